#!/usr/bin/env bash
# The HTTP API with curl and jq: deploy a game, wait until it runs, find it in the room list,
# reserve a seat, see a problem answer, delete the server.
#   GSF_API_KEY=$(cat .gsf-data/admin.key) bash docs/samples/http.sh docs/samples/rps.js
set -euo pipefail
API=${GSF_API_URL:-http://127.0.0.1:8000}
MM=${GSF_MATCHMAKER_URL:-http://127.0.0.1:8100}
AUTH="Authorization: Bearer $GSF_API_KEY"
GAME=${1:-docs/samples/rps.js}

# Upload (multipart): 202 at once with the id, the status URL and the Temporal Web UI link.
id=$(curl -sS --fail-with-body -H "$AUTH" -F "file=@$GAME" -F name=rps-http -F labels=mode=casual \
  "$API/api/v1/servers" | jq -r .id)
echo "server $id"

# Follow the status until the deployment ends.
while :; do
  status=$(curl -sS --fail-with-body -H "$AUTH" "$API/api/v1/servers/$id" | jq -r .status)
  case $status in
    running) break ;;
    rejected | failed) echo "deployment $status" >&2; exit 1 ;;
  esac
  sleep 0.5
done
echo "status $status"

# The room list needs no key; filter by game (the upload's file name) and by labels.
curl -sS --fail-with-body "$MM/servers?game=rps&label.mode=casual" |
  jq -c '.items[] | {server_id, players, max_players, locked, metadata}'

# A seat: ws_url carries the seat token, good for one connection within the reservation time.
curl -sS --fail-with-body -X POST "$MM/join" -H 'content-type: application/json' \
  -d "{\"server_id\": \"$id\"}" | jq -r .ws_url

# Errors are application/problem+json; branch on `type`, never on the text.
curl -sS -H "$AUTH" "$API/api/v1/servers/no-such-server" | jq -r '"\(.status) \(.type)"'

curl -sS --fail-with-body -X DELETE -H "$AUTH" "$API/api/v1/servers/$id" | jq -r '"server \(.id) \(.status)"'
