#!/usr/bin/env bash
# Install every peer into its own virtualenv under bench/.peers/ (idempotent).
set -euo pipefail
here="$(dirname "$0")"
bash "$here/setup_ceiling.sh"
bash "$here/setup_scim2_server.sh"
bash "$here/setup_django_scim2.sh"
