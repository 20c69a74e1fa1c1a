#!/bin/sh
# Bootstraps the raft group once, then initializes the ownership map once.
# Idempotent: a group that is already initialized answers 409
# `already_initialized`, and the map's init carries a fixed request id, so a
# rerun (Job retried, re-applied, run by hand) changes nothing.
#
# Reads /etc/coupon/bootstrap/members.json ({"members": [{node_id, addr}]})
# and regions.json ({"request_id", "regions": [{id, router, node, key_ids}]})
# from the overlay's `coupon-bootstrap` ConfigMap; COUPON_RAFT_ADMIN_TOKEN
# from the `coupon-raft` Secret; RAFT_URL = the local member.
set -eu
auth="Authorization: Bearer ${COUPON_RAFT_ADMIN_TOKEN}"
json="content-type: application/json"

# post PATH FILE: 2xx, or 409 already_initialized, is success.
post() {
  code=$(curl -sS -o /tmp/answer.json -w '%{http_code}' -H "$auth" -H "$json" \
    --data @"$2" "${RAFT_URL}$1") || code=000
  case "$code" in
    2*) echo "POST $1: $code $(cat /tmp/answer.json)"; return 0 ;;
    409) if grep -q already_initialized /tmp/answer.json; then
           echo "POST $1: already initialized"; return 0
         fi ;;
  esac
  echo "POST $1: $code $(cat /tmp/answer.json 2>/dev/null)" >&2
  return 1
}

echo "waiting for every member to answer /livez…"
for url in $(echo "$COUPON_RAFT_URLS" | tr ',' ' '); do
  until curl -fsS -o /dev/null "$url/livez"; do sleep 2; done
  echo "  $url up"
done
until post /v1/raft/initialize /etc/coupon/bootstrap/members.json; do sleep 3; done
echo "waiting for a leader…"
until curl -fsS -o /dev/null "${RAFT_URL}/readyz"; do sleep 2; done
until post /v1/cluster/init /etc/coupon/bootstrap/regions.json; do sleep 3; done
curl -fsS "${RAFT_URL}/v1/cluster/members"
echo
echo "bootstrap done"
