#!/usr/bin/env bash
# run_django_scim2.sh PORT: fresh database $BENCH_DB (default bench_django_scim2), Django
# migrations, then the django-scim2 project under gunicorn on 127.0.0.1:PORT with
# bench/gunicorn.conf.py. SCIM base URL: http://127.0.0.1:PORT/scim/v2. Token: $BENCH_TOKEN.
source "$(dirname "$0")/common.sh"
port="${1:?usage: run_django_scim2.sh PORT}"
db="${BENCH_DB:-bench_django_scim2}"
: "${BENCH_TOKEN:?set BENCH_TOKEN}"
fresh_db "$db"
export BENCH_DATABASE_URL="postgresql://postgres@127.0.0.1:5432/$db"
export DJANGO_SETTINGS_MODULE=benchproj.settings
cd "$BENCH_DIR/peers/django_scim2_project"
"$PEERS_DIR/django-scim2/bin/python" manage.py migrate --no-input -v 0
exec "$PEERS_DIR/django-scim2/bin/gunicorn" -c "$BENCH_DIR/gunicorn.conf.py" -b "127.0.0.1:$port" benchproj.wsgi:application
