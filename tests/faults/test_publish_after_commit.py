"""Found by test_postgres_restart_under_load: a create committed just before PostgreSQL went
away was answered 503, because publishing after the commit read the jobs' kinds from the
database again. Now the writing session remembers the kinds it wrote (no read at all on the
request path), and a publish that must read them leaves the jobs to the sweep when it cannot."""

from __future__ import annotations

from tests.fixtures_worker import free_port


def test_publish_after_commit_never_fails_the_caller(app_env):
    from tasks.outbox import publish
    from web import create_app

    dead = create_app({"ENV_OVERRIDES": {
        **app_env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"},
        "TESTING": True})
    try:
        with dead.app_context():
            publish([1, 2, 3])  # must leave the jobs to the sweep, not raise
            publish([4], {4: "managers.resolve"})  # kinds known: no database read at all
    finally:
        dead.extensions["db.engine"].dispose()
