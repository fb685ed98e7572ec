"""Helpers for the re-sync tests and the benchmark: many users written straight to the table
(with the columns the store derives), an organization's jobs."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert

from models.store import user_columns
from models.user import User

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def bulk_users(
    session: Any,
    org_id: uuid.UUID,
    count: int,
    *,
    prefix: str = "user",
    manager_every: int = 0,
    resolved: bool = True,
    chunk: int = 5000,
) -> list[uuid.UUID]:
    """Insert ``count`` active users named ``{prefix}{i}@example.com`` with externalId
    ``ext-{prefix}{i}``. With ``manager_every`` = k, user i (i >= k) is managed by user i // k,
    linked (``resolved``) or left ``pending`` as a worker would find them before resolution."""
    ids = [uuid.uuid4() for _ in range(count)]
    for start in range(0, count, chunk):
        rows = []
        for i in range(start, min(count, start + chunk)):
            attrs: dict[str, Any] = {
                "schemas": [CORE],
                "userName": f"{prefix}{i}@example.com",
                "externalId": f"ext-{prefix}{i}",
                "active": True,
                "emails": [{"value": f"{prefix}{i}@example.com", "primary": True}],
            }
            manager = None
            if manager_every and i >= manager_every:
                manager = ids[i // manager_every]
                attrs["schemas"] = [CORE, ENTERPRISE]
                attrs[ENTERPRISE] = {"manager": {"value": str(manager)}}
            row = {"id": ids[i], "org_id": org_id, "attrs": attrs, **user_columns(attrs)}
            if manager is not None:
                row.update(
                    manager_state="resolved" if resolved else "pending",
                    manager_id=manager if resolved else None,
                )
            rows.append(row)
        session.execute(insert(User), rows)
    session.commit()
    return ids
