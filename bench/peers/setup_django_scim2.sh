#!/usr/bin/env bash
# django-scim2 from PyPI with Django and psycopg, in bench/.peers/django-scim2/; the project
# it serves is committed in bench/peers/django_scim2_project/.
source "$(dirname "$0")/common.sh"
make_venv django-scim2 "django-scim2" "django>=5.0,<6" "psycopg[binary]>=3.2" "$GUNICORN_SPEC"
