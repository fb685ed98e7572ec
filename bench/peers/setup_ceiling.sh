#!/usr/bin/env bash
# The ceiling: Flask + psycopg pool under gunicorn, in bench/.peers/ceiling/.
source "$(dirname "$0")/common.sh"
make_venv ceiling flask "psycopg[binary,pool]>=3.2" "$GUNICORN_SPEC"
