#!/usr/bin/env bash
# Run the service: web, worker, beat, flower (and a local mail sink) in the foreground.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
[ -f .env ] && set -a && source .env && set +a
export WORKTEAM_ENV="${WORKTEAM_ENV:-development}"
export DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/workteam}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export SMTP_URL="${SMTP_URL:-smtp://127.0.0.1:8025}"
export PORT="${PORT:-5000}"
export PUBLIC_URL="${PUBLIC_URL:-http://127.0.0.1:$PORT}"
export FLOWER_PORT="${FLOWER_PORT:-5555}"
export FLOWER_BASIC_AUTH="${FLOWER_BASIC_AUTH:-operator:$(head -c 12 /dev/urandom | base64 | tr -dc A-Za-z0-9)}"

ensure_python test
ensure_postgres "$DATABASE_URL"
ensure_redis "$REDIS_URL"
ensure_database "$DATABASE_URL"
say "migrating $DATABASE_URL"
"$VENV/bin/flask" --app web db upgrade
say "demo organization"
"$VENV/bin/flask" --app web demo --flower-url "http://127.0.0.1:$FLOWER_PORT" \
  --flower-auth "$FLOWER_BASIC_AUTH"
export PATH="$VENV/bin:$PATH"
exec honcho -f Procfile.dev start
