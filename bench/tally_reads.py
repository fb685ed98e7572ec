"""What the dead rows of ``user_tallies`` cost an import page, read as the service reads the
tally (migration 0016's function) and as it read it before (two plain subqueries).

    .venv/bin/python bench/tally_reads.py [--users 10000] [--db bench_ours]

Copies ``--db`` (a database a ``bench/run.py`` run left) into ``bench_tally_reads``, appends
``--users`` users to its first organization one transaction each, with the folds of the tally
planned without index scans (so they mark none of the dead rows' index entries: what a run
whose connections planned their folds as bitmap scans leaves), then walks the first 100 import
pages of 100 with the page's statement, timing each walk (PostgreSQL and the round trips, no
app): twice with the former read, twice with the function, twice with the former read again.
The former read is planned as a bitmap scan (a function in the copy turns the other scans off
for it), as PostgreSQL planned it in the runs whose import pages were slow; with other
statistics it may plan it as an index scan, which marks the entries itself. The first function
read marks the entries dead, and every read after it skips them, the former one's too. The copy
is dropped at the end.
"""

from __future__ import annotations

import argparse
import time

import psycopg
from sqlalchemy.dialects import postgresql

from web.scim import listing

PG = "postgresql://postgres@127.0.0.1:5432/{db}"
SCRATCH = "bench_tally_reads"
INSERT = (
    "INSERT INTO users (id, org_id, user_name, attrs, emails_lower, active, version, created,"
    " last_modified, manager_state, license_state) VALUES (gen_random_uuid(), %s, %s,"
    " '{}'::jsonb, '{}', true, 1, now(), now(), 'none', 'none')"
)
# The tally as the page's statement read it before migration 0016, twice (users, changes),
# each planned as a bitmap scan.
FORMER_READ = """
    CREATE FUNCTION bench_former_tally(org uuid, OUT users numeric, OUT changes numeric)
    LANGUAGE plpgsql STABLE SET enable_indexscan = off SET enable_seqscan = off AS $$
    BEGIN
        SELECT coalesce(sum(t.users), 0), coalesce(sum(t.changes), 0) INTO users, changes
        FROM user_tallies t WHERE t.org_id = org;
    END $$
"""
FORMER_TALLY = (
    "(SELECT users FROM bench_former_tally(%(org_id)s)),"
    " (SELECT changes FROM bench_former_tally(%(org_id)s)) "
)


def statements() -> tuple[str, str]:
    """The import page's statement as shipped, and the same with the former tally read."""
    shipped = str(listing._after_statement().compile(dialect=postgresql.dialect()))
    head, tail = shipped.split("(SELECT ARRAY[", 1)
    return shipped, head + FORMER_TALLY + tail.split(") AS anon_3 ", 1)[1]


def walk(conn: psycopg.Connection, sql: str, org: object) -> float:
    """Milliseconds to read the first 100 pages of 100 users, each after the last one's end."""
    started, after = time.perf_counter(), 0
    for _ in range(100):
        rows = conn.execute(sql, {"org_id": org, "after_seq": after, "count": 100},
                            prepare=True).fetchall()
        after = rows[-1][1]
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--db", default="bench_ours")
    args = parser.parse_args()
    shipped, former = statements()
    with psycopg.connect(PG.format(db="postgres"), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")
        admin.execute(f"CREATE DATABASE {SCRATCH} TEMPLATE {args.db}")
    try:
        with psycopg.connect(PG.format(db=SCRATCH), autocommit=True) as conn:
            org = conn.execute(
                "SELECT id FROM organizations ORDER BY created LIMIT 1").fetchone()[0]
            conn.execute(FORMER_READ)
            conn.execute("SET enable_indexscan = off")
            with conn.cursor() as cur:
                for i in range(args.users):
                    cur.execute(INSERT, (org, f"tally-reads-{i}"), prepare=True)
            conn.execute("RESET enable_indexscan")
            for name, sql in (("former", former), ("former", former), ("function", shipped),
                              ("function", shipped), ("former", former), ("former", former)):
                print(f"{name:9} {walk(conn, sql, org):6.0f} ms for 100 pages")
    finally:
        with psycopg.connect(PG.format(db="postgres"), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH}")


if __name__ == "__main__":
    main()
