# Shared by scripts/run.sh and scripts/test.sh: make the machine ready, idempotently.
# Installs (Debian/Ubuntu, via apt-get) and starts PostgreSQL and Redis only when nothing
# answers at DATABASE_URL / REDIS_URL; creates .venv and installs the package into it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

APT_UPDATED=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || { echo "apt-get not found: install $* by hand" >&2; return 1; }
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -qq >&2; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >&2
}

ensure_python() {
  if ! command -v python3 >/dev/null 2>&1; then apt_install python3 python3-venv python3-dev; fi
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$VENV"; }
  fi
  local stamp="$VENV/.installed-$(sha1sum "$ROOT/pyproject.toml" | cut -c1-12)-$1"
  if [ ! -f "$stamp" ]; then
    say "installing Python packages into .venv ($1)"
    "$PY" -m pip install -q --upgrade pip >&2
    "$PY" -m pip install -q -e "$ROOT[$1]" >&2
    rm -f "$VENV"/.installed-*; touch "$stamp"
  fi
}

# Is something answering at the PostgreSQL server of $1 (a postgresql:// URL)?
pg_answers() {
  "$PY" - "$1" <<'PY' >/dev/null 2>&1
import sys, psycopg
from urllib.parse import urlsplit, urlunsplit
u = urlsplit(sys.argv[1])
psycopg.connect(urlunsplit(u._replace(path="/postgres")), connect_timeout=3).close()
PY
}

ensure_postgres() {
  local url="$1"
  if pg_answers "$url"; then return 0; fi
  say "no PostgreSQL answers at $url: installing/starting Debian's postgresql"
  command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql
  local version; version="$(ls /etc/postgresql | sort -V | tail -n1)"
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  # Local development and CI only: trust loopback connections so the URL needs no password.
  if ! grep -q "workteam: trust loopback" "$hba"; then
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust # workteam: trust loopback\nhost all all ::1/128 trust # workteam: trust loopback' "$hba"
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
    || $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  for _ in $(seq 1 30); do pg_answers "$url" && return 0; sleep 1; done
  echo "PostgreSQL did not come up at $url" >&2; return 1
}

redis_answers() {
  "$PY" -c "import redis,sys; redis.Redis.from_url(sys.argv[1], socket_timeout=2).ping()" "$1" \
    >/dev/null 2>&1
}

ensure_redis() {
  local url="$1"
  if redis_answers "$url"; then return 0; fi
  say "no Redis answers at $url: installing/starting Debian's redis-server"
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  local port; port="$("$PY" -c "import sys; from urllib.parse import urlsplit; print(urlsplit(sys.argv[1]).port or 6379)" "$url")"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no >&2
  for _ in $(seq 1 20); do redis_answers "$url" && return 0; sleep 0.5; done
  echo "Redis did not come up at $url" >&2; return 1
}

amqp_answers() {
  "$PY" -c "import sys; from kombu import Connection; Connection(sys.argv[1], connect_timeout=2).ensure_connection(max_retries=1)" \
    "$1" >/dev/null 2>&1
}

ensure_rabbitmq() {
  # Only the tests of RabbitMQ as the broker use it (they are skipped when none answers).
  local url="$1"
  if amqp_answers "$url"; then return 0; fi
  say "no RabbitMQ answers at $url: installing/starting Debian's rabbitmq-server"
  [ -x /usr/sbin/rabbitmq-server ] || apt_install rabbitmq-server || return 0
  # The package starts it where a service manager runs; elsewhere start it here.
  for _ in $(seq 1 5); do amqp_answers "$url" && return 0; sleep 1; done
  $SUDO /usr/sbin/rabbitmq-server -detached >&2 || true
  for _ in $(seq 1 60); do amqp_answers "$url" && return 0; sleep 1; done
  echo "RabbitMQ did not come up at $url: its tests will be skipped" >&2
}

ensure_database() {
  # Create the database named in $1 if it does not exist.
  "$PY" - "$1" <<'PY'
import sys, psycopg
from urllib.parse import urlsplit, urlunsplit
u = urlsplit(sys.argv[1])
name = u.path.lstrip("/")
with psycopg.connect(urlunsplit(u._replace(path="/postgres")), autocommit=True) as conn:
    if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        conn.execute(f'CREATE DATABASE "{name}"')
PY
}

ensure_chromium() {
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Debian's chromium for the browser tests"
    apt_install chromium || echo "chromium could not be installed; browser tests will fail" >&2
  fi
}
