#!/usr/bin/env bash
# Run the tests: the same preparation as run.sh, then the whole pytest suite and ruff.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6379/13}"
export TEST_AMQP_URL="${TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672//}"

ensure_python test
ensure_postgres "$TEST_DATABASE_URL"
ensure_redis "$TEST_REDIS_URL"
ensure_chromium
# Last: a package that failed to start cannot then stand in the way of the others' installs.
ensure_rabbitmq "$TEST_AMQP_URL"
say "ruff"
"$VENV/bin/ruff" check .
say "mypy"
"$VENV/bin/mypy"
say "pytest"
exec "$VENV/bin/python" -m pytest "$@"
