# Shared by the peer set-up and run scripts: sourced, never run.
# BENCH_DIR is bench/, PEERS_DIR is bench/.peers/ (ignored by git).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS_DIR="$BENCH_DIR/.peers"
PYTHON="${BENCH_PYTHON:-python3}"
# The same gunicorn as the main venv, so every server runs the same server code.
MAIN_VENV="$BENCH_DIR/../.venv"
if [ -x "$MAIN_VENV/bin/python" ] && "$MAIN_VENV/bin/python" -c 'import gunicorn' 2>/dev/null; then
    GUNICORN_SPEC="gunicorn==$("$MAIN_VENV/bin/python" -c 'import gunicorn; print(gunicorn.__version__)')"
else
    GUNICORN_SPEC="gunicorn>=22"
fi
PG_ADMIN_URL="${BENCH_PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"

# make_venv NAME PACKAGES...: create bench/.peers/NAME and install PACKAGES into it (idempotent).
make_venv() {
    local name="$1"; shift
    local venv="$PEERS_DIR/$name"
    if [ ! -x "$venv/bin/python" ]; then
        mkdir -p "$PEERS_DIR"
        "$PYTHON" -m venv "$venv"
    fi
    local stamp="$venv/.installed"
    local want="$*"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
        echo "$want" > "$stamp"
    fi
    echo "$name: $("$venv/bin/pip" freeze --disable-pip-version-check 2>/dev/null | tr '\n' ' ')"
}

# fresh_db NAME: drop and create database NAME.
fresh_db() {
    psql "$PG_ADMIN_URL" -q -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" -c "CREATE DATABASE \"$1\""
}
