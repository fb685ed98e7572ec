#!/usr/bin/env bash
# scim2-server (python-scim) from PyPI, in bench/.peers/scim2-server/.
source "$(dirname "$0")/common.sh"
make_venv scim2-server "scim2-server" "$GUNICORN_SPEC"
