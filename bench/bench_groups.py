"""Group scale benchmark: W5 (5,000 members added by PATCH in batches of 100) and reads of a
100,000-member group, over HTTP against a running Workteam app.

    # start our service (gunicorn + worker, as bench/servers.py's Ours, own db/port) and run:
    .venv/bin/python -m bench.bench_groups
    # or against an app already running (users are seeded through DATABASE_URL):
    .venv/bin/python -m bench.bench_groups --base-url http://127.0.0.1:5000/scim/v2/<org> \
        --token <token> --database-url postgresql://postgres@127.0.0.1:5432/workteam

Users are inserted straight into the database (creating 105,000 users over HTTP measures user
creation, not groups); everything about groups goes over HTTP, one keep-alive connection, one
request at a time, as an IdP pushes. Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


class Client:
    def __init__(self, base_url: str, token: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.path = parts.path.rstrip("/")
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                               timeout=120)
        self.headers = {"Authorization": f"Bearer {token}",
                        "Content-Type": "application/scim+json",
                        "Accept": "application/scim+json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, float]:
        data = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self.conn.request(method, self.path + path, body=data, headers=self.headers)
                response = self.conn.getresponse()
                raw = response.read()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # the server closed an idle keep-alive connection (e.g. while we seeded)
                self.conn.close()
                if attempt == 2:
                    raise
                continue
            return response.status, raw, time.perf_counter() - started
        raise AssertionError("unreachable")


def seed_users(database_url: str, org_id: str, n: int, prefix: str) -> list[str]:
    """n users of ``org_id`` in one transaction, through the models (their column defaults)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from sqlalchemy import insert

    from models.db import make_engine, make_session_factory
    from models.store import user_columns
    from models.user import User

    engine = make_engine(database_url)
    ids: list[str] = []
    with make_session_factory(engine)() as session:
        for start in range(0, n, 5000):
            rows = []
            for i in range(start, min(n, start + 5000)):
                attrs = {"schemas": [USER], "userName": f"{prefix}{i}@bench.example"}
                rows.append({"id": uuid.uuid4(), "org_id": uuid.UUID(org_id), "attrs": attrs,
                             **user_columns(attrs)})
            session.execute(insert(User), rows)
            ids.extend(str(r["id"]) for r in rows)
        session.commit()
    engine.dispose()
    return ids


def stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def expect(status: int, raw: bytes, wanted: tuple[int, ...], what: str) -> None:
    if status not in wanted:
        raise SystemExit(f"{what}: HTTP {status}: {raw[:300]!r}")


def add_members(c: Client, gid: str, ids: list[str], batch: int) -> tuple[float, list[float]]:
    times = []
    started = time.perf_counter()
    for i in range(0, len(ids), batch):
        body = {"schemas": [PATCH], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": v} for v in ids[i:i + batch]]}]}
        status, raw, took = c.call("PATCH", f"/Groups/{gid}", body)
        expect(status, raw, (200, 204), "PATCH add members")
        times.append(took)
    return time.perf_counter() - started, times


def create_group(c: Client, name: str) -> str:
    status, raw, _ = c.call("POST", "/Groups", {"schemas": [GROUP], "displayName": name})
    expect(status, raw, (201,), "POST /Groups")
    return json.loads(raw)["id"]


def repeat(c: Client, method: str, path: str, times: int, body: Any = None) -> tuple[list, bytes]:
    out, raw = [], b""
    for _ in range(times):
        status, raw, took = c.call(method, path, body)
        expect(status, raw, (200, 204), f"{method} {path}")
        out.append(took)
    return out, raw


def run(base_url: str, token: str, database_url: str, org_id: str, big: int) -> dict:
    c = Client(base_url, token)
    results: dict[str, Any] = {}
    tag = uuid.uuid4().hex[:6]

    # W5: 5,000 members in PATCH batches of 100
    w5_ids = seed_users(database_url, org_id, 5000, f"w5-{tag}-")
    gid = create_group(c, f"bench-w5-{tag}")
    total, times = add_members(c, gid, w5_ids, 100)
    status, raw, _ = c.call("GET", f"/Groups/{gid}?attributes=members")
    got = len(json.loads(raw).get("members", []))
    if got != 5000:
        raise SystemExit(f"W5: group has {got} members, expected 5000")
    results["w5_total_s"] = round(total, 2)
    results["w5_patch"] = stats(times)

    # A 100,000-member group (built in PATCH batches of 1,000), then reads
    big_ids = seed_users(database_url, org_id, big, f"big-{tag}-")
    big_gid = create_group(c, f"bench-big-{tag}")
    total, times = add_members(c, big_gid, big_ids, 1000)
    results["big_members"] = big
    results["big_build_total_s"] = round(total, 2)
    results["big_build_patch_1000"] = stats(times)
    t, raw = repeat(c, "GET", f"/Groups/{big_gid}?excludedAttributes=members", 50)
    assert b'"members"' not in raw
    results["get_excluded_members"] = stats(t)
    query = urllib.parse.urlencode({"filter": f'displayName eq "bench-big-{tag}"',
                                    "excludedAttributes": "members"})
    t, _ = repeat(c, "GET", f"/Groups?{query}", 50)
    results["list_filter_excluded_members"] = stats(t)
    t, raw = repeat(c, "GET", f"/Groups/{big_gid}", 5)
    results["get_with_members_capped"] = {**stats(t), "members": len(json.loads(raw)["members"]),
                                          "bytes": len(raw)}
    one = big_ids[-1]
    remove = {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{one}"]'}]}
    back = {"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": one}]}]}
    times = []
    for _ in range(20):
        for body in (remove, back):
            status, raw, took = c.call("PATCH", f"/Groups/{big_gid}", body)
            expect(status, raw, (200, 204), "PATCH one member")
            times.append(took)
    results["patch_one_member_of_big"] = stats(times)
    t, _ = repeat(c, "GET", f"/Users/{big_ids[0]}", 20)
    results["get_member_user"] = stats(t)
    return results


def print_table(results: dict) -> None:
    print(f"{'measure':<44} {'value':>30}")
    for key, value in results.items():
        text = (", ".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict)
                else str(value))
        print(f"{key:<44} {text:>30}")
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url")
    parser.add_argument("--token")
    parser.add_argument("--database-url")
    parser.add_argument("--big", type=int, default=100_000, help="members of the big group")
    args = parser.parse_args()
    if args.base_url:
        if not (args.token and args.database_url):
            parser.error("--base-url needs --token and --database-url")
        org_id = args.base_url.rstrip("/").rsplit("/", 1)[1]
        print_table(run(args.base_url, args.token, args.database_url, org_id, args.big))
        return

    from bench.servers import Ours

    class GroupsBench(Ours):
        name = "ours-groups"
        port = 18105
        db = "bench_groups"
        redis_url = "redis://127.0.0.1:6379/15"

    server = GroupsBench(Path(tempfile.mkdtemp(prefix="bench-groups-")))
    server.start()
    try:
        print(f"server logs: {server.raw_dir}", file=sys.stderr)
        print_table(run(server.base_url, server.token, server.env["DATABASE_URL"],
                        server.org_id, args.big))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
