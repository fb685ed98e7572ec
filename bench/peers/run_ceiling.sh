#!/usr/bin/env bash
# run_ceiling.sh PORT: fresh database $BENCH_DB (default bench_ceiling), then the ceiling app
# under gunicorn on 127.0.0.1:PORT with bench/gunicorn.conf.py. Token: $BENCH_TOKEN.
source "$(dirname "$0")/common.sh"
port="${1:?usage: run_ceiling.sh PORT}"
db="${BENCH_DB:-bench_ceiling}"
: "${BENCH_TOKEN:?set BENCH_TOKEN}"
fresh_db "$db"
psql "postgresql://postgres@127.0.0.1:5432/$db" -q -v ON_ERROR_STOP=1 -f "$BENCH_DIR/peers/ceiling_schema.sql"
export BENCH_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$db"
# One pooled connection per gunicorn thread.
export BENCH_POOL_SIZE="${BENCH_POOL_SIZE:-$("$PEERS_DIR/ceiling/bin/python" -c "import runpy; print(runpy.run_path('$BENCH_DIR/gunicorn.conf.py')['threads'])")}"
cd "$BENCH_DIR/peers"
exec "$PEERS_DIR/ceiling/bin/gunicorn" -c "$BENCH_DIR/gunicorn.conf.py" -b "127.0.0.1:$port" ceiling_app:app
