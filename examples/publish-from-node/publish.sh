#!/bin/sh
# Publish one update to Tidings with curl: any stack that can make an HTTP
# request can publish.
#
#   TIDINGS_TOKEN=<publisher token> examples/publish-from-node/publish.sh 'hello'
#
# Environment as for publish.mjs: TIDINGS_URL, TOPIC (default numbers).
# Prints the update's id; exits non-zero with the hub's message on a refusal.
set -eu
curl --fail-with-body -sS \
    -H "Authorization: Bearer ${TIDINGS_TOKEN:?set TIDINGS_TOKEN to a publisher token}" \
    -d topic="${TOPIC:-numbers}" --data-urlencode data="${1:?give the data to publish}" \
    "${TIDINGS_URL:-http://127.0.0.1:3000/.well-known/mercure}"
