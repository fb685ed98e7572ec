#!/usr/bin/env bash
# run_scim2_server.sh PORT: scim2-server as its documentation runs it, the `scim2-server`
# command (one process, a thread per request, in-memory storage: it has no PostgreSQL
# storage), with a static bearer token (given as --bearer-token=..., since a random token
# may begin with "-"). SCIM base URL: http://127.0.0.1:PORT/v2.
source "$(dirname "$0")/common.sh"
port="${1:?usage: run_scim2_server.sh PORT}"
: "${BENCH_TOKEN:?set BENCH_TOKEN}"
exec "$PEERS_DIR/scim2-server/bin/scim2-server" --hostname 127.0.0.1 --port "$port" --bearer-token="$BENCH_TOKEN"
