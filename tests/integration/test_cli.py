"""The operators' and admins' CLI prints JSON that scripts (and the docs) can use."""

from __future__ import annotations

import json

from tests.conftest import ScimClient


def _run(app, *args):
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_org_create_token_and_switch(app, client):
    org = _run(app, "org", "create", "Acme", "--plan", "paid", "--seats", "5")
    assert {k: org[k] for k in ("name", "plan", "seats")} == {"name": "Acme", "plan": "paid",
                                                             "seats": 5}
    token = _run(app, "scim", "token", org["id"])
    assert token["base_url"] == f"http://scim.test/scim/v2/{org['id']}"
    assert len(token["token"]) >= 43  # 256 bits, urlsafe base64
    headers = {"Authorization": f"Bearer {token['token']}"}
    path = f"/scim/v2/{org['id']}/Users"
    assert client.get(path, headers=headers).status_code == 200

    assert _run(app, "scim", "disable", org["id"])["scim_enabled"] is False
    assert client.get(path, headers=headers).status_code == 403
    assert _run(app, "scim", "enable", org["id"])["scim_enabled"] is True
    assert client.get(path, headers=headers).status_code == 200

    second = _run(app, "scim", "token", org["id"])
    assert client.get(path, headers=headers).status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {second['token']}"}
                      ).status_code == 200


def test_unknown_org_is_a_clear_error(app):
    result = app.test_cli_runner().invoke(args=["scim", "token", "nope"])
    assert result.exit_code != 0
    assert "no organization nope" in result.output


def test_demo_prints_base_url_and_token(app, client):
    result = app.test_cli_runner().invoke(args=["demo", "--name", "Demo CLI test"])
    assert result.exit_code == 0, result.output
    lines = dict(
        (line.split(None, 2)[0] + " " + line.split(None, 2)[1], line.split(None, 2)[2])
        for line in result.output.splitlines() if line.startswith("  ") and "  " in line.strip()
    )
    base = next(v for k, v in lines.items() if k.startswith("SCIM Base")).split()[-1]
    token = next(v for k, v in lines.items() if k.startswith("Bearer token")).split()[-1]
    org = ScimClient(client, type("O", (), {"base": base.replace("http://scim.test", ""),
                                            "headers": lambda self, **kw: {
                                                "Authorization": f"Bearer {token}", **kw}})())
    assert org.get("/Users").status_code == 200


def test_org_rate_limit(app, org):
    assert _run(app, "org", "rate-limit", str(org.id))["rate_limit"] is None
    assert _run(app, "org", "rate-limit", str(org.id), "5")["effective"] == 5
    assert _run(app, "org", "rate-limit", str(org.id), "--default")["rate_limit"] is None
