-- The ceiling's tables: one row per user, the SCIM document as sent in a jsonb column.
CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org integer NOT NULL,
    user_name text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    data jsonb NOT NULL
);
CREATE UNIQUE INDEX users_org_user_name ON users (org, lower(user_name));
CREATE TABLE groups (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org integer NOT NULL,
    display_name text NOT NULL
);
CREATE TABLE members (
    group_id uuid NOT NULL REFERENCES groups (id),
    user_id uuid NOT NULL REFERENCES users (id),
    PRIMARY KEY (group_id, user_id)
);
