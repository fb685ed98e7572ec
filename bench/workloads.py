"""The workloads W1-W7, each a function of a started server and the run's sizes.

Every request's status and body are checked (loadgen.Client.call); a phase with any error
is invalid and is reported as such, never as a figure.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ours_hooks
from loadgen import CheckFailed, Client, PhaseResult, run_phase
from servers import REPO, Ours, Server

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
CONCURRENCY = 16


@dataclass
class Sizes:
    w1_users: int
    w2_sizes: list[int]
    w2_seconds: float
    w3_seconds: float
    w5_members: int
    w6_users: int
    phase_max_seconds: float
    seed_http_max_seconds: float
    w6_settle_max_seconds: float
    w7_max_seconds: float
    # W4's fetches of the first and of the last page, alternated, after the walk.
    w4_probe_pairs: int = 15
    # Once every server has started: the wait for their start-up work to end, before the
    # machine's idle load is measured (2 s) and the first turn.
    start_quiet_seconds: float = 5.0


# Quick: a smoke run of about 85 s (1 s phases; W6 brings ours to exactly 2,000 users).
QUICK = Sizes(w1_users=500, w2_sizes=[100, 500, 2000], w2_seconds=1, w3_seconds=1,
              w5_members=500, w6_users=1500, phase_max_seconds=60, seed_http_max_seconds=30,
              w6_settle_max_seconds=30, w7_max_seconds=60, w4_probe_pairs=5,
              start_quiet_seconds=1.0)
FULL = Sizes(w1_users=10_000, w2_sizes=[1_000, 10_000, 100_000], w2_seconds=8, w3_seconds=8,
             w5_members=5_000, w6_users=100_000, phase_max_seconds=300,
             seed_http_max_seconds=600, w6_settle_max_seconds=120, w7_max_seconds=300)


def make_user(prefix: str, i: int) -> dict[str, Any]:
    """An Okta-like user body."""
    name = f"{prefix}{i:06d}@bench.example"
    return {
        "schemas": [USER_SCHEMA],
        "userName": name,
        "externalId": f"{prefix}ext-{i:06d}",
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i}"},
        "displayName": f"Given{i} Family{i}",
        "emails": [{"value": name, "type": "work", "primary": True}],
        "active": True,
    }


@dataclass
class State:
    """What a server holds, as far as the workloads know."""

    user_names: list[str] = field(default_factory=list)  # every user, in creation order
    w1_ids: list[str] = field(default_factory=list)  # ids of the users W1 created
    w1_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> body
    next_seed: int = 0


@dataclass
class Outcome:
    """One workload's figures on one server."""

    workload: str
    metric: str
    value: float | None
    unit: str
    valid: bool
    detail: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload, "metric": self.metric, "value": self.value,
            "unit": self.unit, "valid": self.valid, "detail": self.detail, "note": self.note,
        }


def _same_name(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.lower() == b.lower()


def _must(cond: bool, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def _list_total(doc: Any) -> int:
    _must(isinstance(doc, dict), "not a JSON object")
    _must(LIST_SCHEMA in doc.get("schemas", []), "not a ListResponse")
    return int(doc["totalResults"])


# -- warm-up --------------------------------------------------------------------------
def warm_up(server: Server, requests: int = 300) -> PhaseResult:
    """Lookups of a user that does not exist, so every worker has connected and imported
    what it needs before the first measured phase. Not reported."""

    async def op(client: Client, _i: int) -> None:
        await client.call("GET", "/Users", params={"filter": 'userName eq "warm@bench.example"'},
                          check=lambda _s, d: _must(_list_total(d) == 0, "warm-up user exists"))

    return run_phase("warm-up", server.base_url, server.token, list(range(requests)), op,
                     concurrency=CONCURRENCY, max_seconds=20)


# -- W1 ---------------------------------------------------------------------------------
def w1_create(server: Server, state: State, start: int, stop: int, sizes: Sizes) -> PhaseResult:
    """Okta's initial sync: look the user up by userName, then create it."""
    bodies = [make_user("u", i) for i in range(start, stop)]

    async def op(client: Client, body: dict[str, Any]) -> None:
        name = body["userName"]

        def absent(_s: int, doc: Any) -> None:
            _must(_list_total(doc) == 0, f"{name} found before creation")

        await client.call("GET", "/Users", params={"filter": f'userName eq "{name}"'},
                          check=absent)

        def created(_s: int, doc: Any) -> None:
            _must(bool(doc.get("id")), "no id")
            _must(_same_name(doc.get("userName"), name), "userName differs")

        _, doc = await client.call("POST", "/Users", body=body, expect=(201,), check=created)
        uid = str(doc["id"])
        state.w1_ids.append(uid)
        state.w1_bodies[uid] = body
        state.user_names.append(name)

    return run_phase(f"W1 create {start}-{stop}", server.base_url, server.token, bodies, op,
                     concurrency=CONCURRENCY, max_seconds=sizes.phase_max_seconds)


def merge(name: str, parts: list[PhaseResult]) -> PhaseResult:
    out = PhaseResult(name=name, concurrency=parts[0].concurrency)
    for p in parts:
        out.ops += p.ops
        out.requests += p.requests
        out.errors += p.errors
        out.error_samples += p.error_samples
        out.wall_s += p.wall_s
        out.latencies_ms += p.latencies_ms
        out.loadgen_cpu_s += p.loadgen_cpu_s
        out.machine_cpu_pct += p.machine_cpu_pct * p.wall_s
        if p.stopped_by != "count":
            out.stopped_by = p.stopped_by
    out.machine_cpu_pct = out.machine_cpu_pct / out.wall_s if out.wall_s else 0.0
    return out


# -- W2 ---------------------------------------------------------------------------------
def w2_lookups(server: Server, state: State, size: int, sizes: Sizes, seed: int) -> PhaseResult:
    rng = random.Random(seed)
    names = rng.choices(state.user_names, k=200_000)

    async def op(client: Client, name: str) -> None:
        def found(_s: int, doc: Any) -> None:
            _must(_list_total(doc) == 1, f"{name}: totalResults != 1")
            _must(_same_name(doc["Resources"][0]["userName"], name), "wrong user")

        await client.call("GET", "/Users", params={"filter": f'userName eq "{name}"'},
                          check=found)

    return run_phase(f"W2 lookups at {size}", server.base_url, server.token, names, op,
                     concurrency=CONCURRENCY, max_seconds=sizes.w2_seconds)


# -- W3 ---------------------------------------------------------------------------------
def entra_patch(value: str | bool) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "Replace", "path": "active", "value": value}]}


def w3_patch(server: Server, state: State, sizes: Sizes, seed: int,
             boolean: bool = False) -> PhaseResult:
    """PATCH active False/True with Entra's body (string "False"/"True")."""
    rng = random.Random(seed)
    ids = rng.choices(state.w1_ids, k=200_000)
    items = [(uid, n % 2 == 1) for n, uid in enumerate(ids)]

    async def op(client: Client, item: tuple[str, bool]) -> None:
        uid, active = item
        value: str | bool = active if boolean else ("True" if active else "False")

        def applied(status: int, doc: Any) -> None:
            if status == 200:
                _must(doc.get("active") is active, f"active is {doc.get('active')!r}")

        await client.call("PATCH", f"/Users/{uid}", body=entra_patch(value),
                          expect=(200, 204), check=applied)

    name = "W3 PATCH active (boolean value)" if boolean else "W3 PATCH active (Entra body)"
    return run_phase(name, server.base_url, server.token, items, op,
                     concurrency=CONCURRENCY, max_seconds=sizes.w3_seconds)


def w3_put(server: Server, state: State, sizes: Sizes, seed: int) -> PhaseResult:
    rng = random.Random(seed)
    ids = rng.choices(state.w1_ids, k=200_000)

    async def op(client: Client, item: tuple[int, str]) -> None:
        n, uid = item
        body = dict(state.w1_bodies[uid])
        body["id"] = uid
        given = f"Put{n}"
        body["name"] = {**body["name"], "givenName": given}
        body["active"] = True

        def replaced(_s: int, doc: Any) -> None:
            _must(_same_name(doc.get("userName"), body["userName"]), "userName differs")
            _must(doc["name"]["givenName"] == given, "givenName not replaced")

        await client.call("PUT", f"/Users/{uid}", body=body, check=replaced)

    return run_phase("W3 PUT replace", server.base_url, server.token, list(enumerate(ids)), op,
                     concurrency=CONCURRENCY, max_seconds=sizes.w3_seconds)


# -- W4 ---------------------------------------------------------------------------------
def w4_import(server: Server, state: State, sizes: Sizes) -> tuple[PhaseResult, dict[str, Any]]:
    """Page through every user with startIndex/count=100, one client, as an import does."""
    total = len(state.user_names)
    starts = list(range(1, total + 1, 100))
    seen: set[str] = set()

    async def page(client: Client, start: int) -> None:
        def ok(_s: int, doc: Any) -> None:
            _must(_list_total(doc) == total, f"totalResults {doc.get('totalResults')} != {total}")
            got = doc.get("Resources", [])
            _must(len(got) == min(100, total - start + 1), f"page at {start}: {len(got)} items")
            seen.update(str(r["id"]) for r in got)

        await client.call("GET", "/Users", params={"startIndex": str(start), "count": "100"},
                          check=ok)

    walk = run_phase("W4 import", server.base_url, server.token, starts, page,
                     concurrency=1, max_seconds=sizes.phase_max_seconds)
    if walk.valid and len(seen) != total:
        walk.errors += 1
        walk.error_samples.append(f"walk saw {len(seen)} distinct ids, expected {total}")
    # First against last page: the median of 15 fetches of each (5 in a quick run), one
    # client, alternated so that the host's drift meets both alike (7 of each, first all then
    # last, read 0.84-1.22 for ours between full runs of the same code).
    pairs = sizes.w4_probe_pairs
    probe = [starts[0], starts[-1]] * pairs

    async def timed(client: Client, start: int) -> None:
        await client.call("GET", "/Users", params={"startIndex": str(start), "count": "100"},
                          check=lambda _s, d: _must(_list_total(d) == total, "total changed"))

    pages = run_phase("W4 first/last page", server.base_url, server.token, probe, timed,
                      concurrency=1, max_seconds=sizes.phase_max_seconds)
    first, last = pages.latencies_ms[0::2], pages.latencies_ms[1::2]
    complete = len(first) == len(last) == pairs
    extra = {
        "pages": len(starts),
        "first_page_ms": round(statistics.median(first), 2) if complete else None,
        "last_page_ms": round(statistics.median(last), 2) if complete else None,
        "probe_valid": pages.valid,
        "probe_errors": pages.error_samples,
    }
    if extra["first_page_ms"] and extra["last_page_ms"]:
        extra["last_over_first"] = round(extra["last_page_ms"] / extra["first_page_ms"], 2)
    return walk, extra


# -- W5 ---------------------------------------------------------------------------------
def w5_group(server: Server, state: State, sizes: Sizes) -> PhaseResult:
    """One group gets ``w5_members`` members in PATCH batches of 100, one client."""
    members = state.w1_ids[: sizes.w5_members]
    batches = [members[i : i + 100] for i in range(0, len(members), 100)]
    group: dict[str, str] = {}

    async def create(client: Client, _item: int) -> None:
        _, doc = await client.call(
            "POST", "/Groups", body={"schemas": [GROUP_SCHEMA], "displayName": "bench-w5"},
            expect=(201,), check=lambda _s, d: _must(bool(d.get("id")), "no group id"))
        group["id"] = str(doc["id"])

    made = run_phase("W5 create group", server.base_url, server.token, [0], create,
                     concurrency=1, max_seconds=30)
    if not made.valid:
        return made

    async def add(client: Client, batch: list[str]) -> None:
        body = {"schemas": [PATCH_SCHEMA], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": m} for m in batch]}]}
        await client.call("PATCH", f"/Groups/{group['id']}", body=body, expect=(200, 204))

    result = run_phase(f"W5 group +{len(members)} members", server.base_url, server.token,
                       batches, add, concurrency=1, max_seconds=sizes.phase_max_seconds)

    async def verify(client: Client, _item: int) -> None:
        def ok(_s: int, doc: Any) -> None:
            got = {str(m["value"]) for m in doc.get("members", [])}
            _must(got == set(members), f"group has {len(got)} members, expected {len(members)}")

        await client.call("GET", f"/Groups/{group['id']}", check=ok)

    checked = run_phase("W5 verify", server.base_url, server.token, [0], verify,
                        concurrency=1, max_seconds=60)
    if not checked.valid:
        result.errors += checked.errors
        result.error_samples += checked.error_samples
    return result


# -- seeding ----------------------------------------------------------------------------
class SkipSize(Exception):
    """A size a server is not measured at in this run, with the reason."""


def seed_to(server: Server, state: State, target: int, sizes: Sizes,
            allow_slow: bool = True) -> str:
    """Grow the server to ``target`` users: in its database, through /Bulk, or over HTTP."""
    need = target - len(state.user_names)
    if need <= 0:
        return "none"
    bodies = [make_user("s", state.next_seed + i) for i in range(need)]
    state.next_seed += need
    t0 = time.perf_counter()
    if server.seed_direct(bodies):
        state.user_names += [b["userName"] for b in bodies]
        return f"inserted {need} users in its database ({time.perf_counter() - t0:.1f}s)"
    if server.bulk_seed_supported() and not allow_slow:
        raise SkipSize(f"{server.name} grows only through its API here, and growing it to "
                       f"{target} users through /Bulk was turned off (run.py --no-bulk-seed)")
    if server.bulk_seed_supported():
        chunks = [bodies[i : i + 500] for i in range(0, len(bodies), 500)]

        async def bulk(client: Client, chunk: list[dict[str, Any]]) -> None:
            ops = [{"method": "POST", "path": "/Users", "bulkId": f"b{n}", "data": b}
                   for n, b in enumerate(chunk)]

            def ok(_s: int, doc: Any) -> None:
                bad = [o for o in doc["Operations"] if str(o.get("status")) != "201"]
                _must(not bad, f"bulk: {len(bad)} operations failed: {bad[:1]}")

            await client.call("POST", "/Bulk", expect=(200,), check=ok, body={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": ops})
            state.user_names.extend(b["userName"] for b in chunk)

        r = run_phase("seed /Bulk", server.base_url, server.token, chunks, bulk,
                      concurrency=2, max_seconds=sizes.seed_http_max_seconds)
        how = "/Bulk"
    else:
        async def post(client: Client, body: dict[str, Any]) -> None:
            await client.call("POST", "/Users", body=body, expect=(201,))
            state.user_names.append(body["userName"])

        r = run_phase("seed POST", server.base_url, server.token, bodies, post,
                      concurrency=CONCURRENCY, max_seconds=sizes.seed_http_max_seconds)
        how = "POST /Users"
    if not r.valid or len(state.user_names) < target:
        raise CheckFailed(f"seeding through {how} reached {len(state.user_names)} of {target} "
                          f"users in {r.wall_s:.0f}s ({r.error_samples[:1]})")
    return f"created {need} users through {how} ({r.wall_s:.1f}s)"


# -- W6 (ours only) ---------------------------------------------------------------------
def w6_managers(server: Ours, state: State, sizes: Sizes, seed: int,
                pending: Callable[[str, str], int] = ours_hooks.pending_managers,
                ) -> tuple[PhaseResult, dict[str, Any]]:
    """N users with managers (a tree, 10 reports each), created in random order; then the
    seconds from the last create until no manager reference is pending."""
    n = sizes.w6_users
    bodies = [make_user("m", i) for i in range(n)]
    for i in range(1, n):
        bodies[i][ours_hooks.ENTERPRISE] = {"manager": ours_hooks.manager_reference(
            bodies[(i - 1) // 10])}
        bodies[i]["schemas"] = [USER_SCHEMA, ours_hooks.ENTERPRISE]
    order = list(range(n))
    random.Random(seed).shuffle(order)

    async def post(client: Client, i: int) -> None:
        await client.call("POST", "/Users", body=bodies[i], expect=(201,),
                          check=lambda _s, d: _must(bool(d.get("id")), "no id"))
        state.user_names.append(bodies[i]["userName"])

    # A generous cap (50 creates/s): a phase cut short leaves references whose manager was
    # never created, and W6 cannot be measured at all.
    created = run_phase(f"W6 create {n} users with managers", server.base_url, server.token,
                        order, post, concurrency=CONCURRENCY,
                        max_seconds=max(sizes.phase_max_seconds, n / 50))
    extra: dict[str, Any] = {"create_s": round(created.wall_s, 1),
                             "create_per_s": round(created.ops_per_s, 1)}
    if created.valid and created.ops < n:
        created.errors += 1
        created.error_samples.append(f"creation stopped at the time cap: {created.ops} of {n} "
                                     f"users created in {created.wall_s:.0f}s")
    if not created.valid:
        return created, extra
    t0 = time.perf_counter()
    deadline = t0 + sizes.w6_settle_max_seconds
    left = -1
    while time.perf_counter() < deadline:
        try:
            left = pending(server.base_url, server.token)
        except Exception as exc:  # any failure of the check makes W6 invalid
            created.errors += 1
            created.error_samples.append(f"completion check failed: {exc!r}")
            return created, extra
        if left == 0:
            extra["settle_s"] = round(time.perf_counter() - t0, 2)
            return created, extra
        time.sleep(0.5)
    extra["settle_s"] = None
    extra["pending_at_timeout"] = left
    created.errors += 1
    created.error_samples.append(f"{left} references still pending after "
                                 f"{sizes.w6_settle_max_seconds:.0f}s")
    return created, extra


# -- W7 (ours only) ---------------------------------------------------------------------
def w7_resync(server: Ours, sizes: Sizes) -> Outcome:
    argv = ours_hooks.resync_argv(server.org_id)
    argv = [str(server.venv / argv[0]), *argv[1:]] if (server.venv / argv[0]).exists() else argv
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=REPO, env={**server.env_all()}, capture_output=True,
                              text=True, timeout=sizes.w7_max_seconds, check=False)
    except subprocess.TimeoutExpired:
        return Outcome("W7", "bulk re-sync", None, "s", False,
                       note=f"did not finish within {sizes.w7_max_seconds:.0f}s")
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 and ("No such command" in output or "Usage:" in output):
        return Outcome("W7", "bulk re-sync", None, "s", True,
                       note="skipped: `flask --app web resync` does not exist yet")
    if proc.returncode != 0:
        return Outcome("W7", "bulk re-sync", None, "s", False,
                       note=f"resync failed rc={proc.returncode}: {output.strip()[-300:]}")
    deadline = t0 + sizes.w7_max_seconds
    while not ours_hooks.resync_finished(proc.stdout, server.base_url, server.token):
        if time.perf_counter() > deadline:
            return Outcome("W7", "bulk re-sync", None, "s", False, note="did not finish")
        time.sleep(0.5)
    return Outcome("W7", "bulk re-sync", round(time.perf_counter() - t0, 2), "s", True)
