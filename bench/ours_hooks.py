"""Pluggable parts of the workloads only our service runs (W6, W7).

Our service is being built while this harness is; when its contract changes, change these
functions and nothing else. Each takes plain values so it can be swapped without touching
run.py.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
WORKTEAM = "urn:workteam:params:scim:schemas:extension:workteam:2.0:User"
PENDING_FILTER = f'{WORKTEAM}:managerState eq "pending"'


def manager_reference(manager: dict[str, Any]) -> dict[str, Any]:
    """The enterprise ``manager`` value a user is sent with, given its manager's body.

    The manager may not exist yet when the user is created (W6 creates users in random
    order), so the reference is an identifier the IdP knows before the server does: the
    manager's externalId. If our service resolves by another key, change it here.
    """
    return {"value": manager["externalId"]}


def pending_managers(base_url: str, token: str) -> int:
    """How many manager references are still unresolved (W6's completion check).

    Asks ``GET /Users?filter=<workteam>:managerState eq "pending"&count=0`` and returns its
    totalResults. Raises on any non-200 answer, which makes W6 invalid.
    """
    query = urllib.parse.urlencode({"filter": PENDING_FILTER, "count": "0"})
    req = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        f"{base_url}/Users?{query}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/scim+json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        doc = json.loads(resp.read())
    return int(doc["totalResults"])


def resync_argv(org_id: str) -> list[str]:
    """W7's trigger: the CLI command that runs a bulk re-sync of one organization."""
    return ["flask", "--app", "web", "resync", org_id]


def resync_finished(cli_output: str, base_url: str, token: str) -> bool:
    """W7's completion check, polled after the command returns.

    The default takes the command's return as the end of the re-sync (a command that waits
    for its job). If the command only enqueues a job, return False here until the job is
    done (e.g. by its progress in the CLI or the admin API).
    """
    return True
