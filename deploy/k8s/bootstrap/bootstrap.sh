#!/bin/sh
# Bootstraps the raft group once, then initializes the ownership map once.
# Idempotent: a group that is already initialized answers 409
# `already_initialized`, and the map's init carries a fixed request id, so a
# rerun (Job retried, re-applied, run by hand) changes nothing.
#
# Reads $BOOTSTRAP_DIR/members.json ({"members": [{node_id, addr}]}) and
# regions.json ({"request_id", "regions": [{id, router, node, key_ids}]}),
# the overlay's `coupon-bootstrap` ConfigMap; COUPON_RAFT_ADMIN_TOKEN from
# the `coupon-raft` Secret; RAFT_URL = the local member; COUPON_RAFT_URLS =
# every member. CI runs it against three real members
# (chaos-tests/tests/deploy/raft_bootstrap.rs).
set -eu
dir="${BOOTSTRAP_DIR:-/etc/coupon/bootstrap}"
answer="${TMPDIR:-/tmp}/coupon-bootstrap-answer.$$"
auth="Authorization: Bearer ${COUPON_RAFT_ADMIN_TOKEN}"
json="content-type: application/json"

# post PATH FILE: 2xx, or 409 already_initialized, is success.
post() {
  code=$(curl -sS -o "$answer" -w '%{http_code}' -H "$auth" -H "$json" \
    --data @"$2" "${RAFT_URL}$1") || code=000
  case "$code" in
    2*) echo "POST $1: $code $(cat "$answer")"; return 0 ;;
    409) if grep -q already_initialized "$answer"; then
           echo "POST $1: already initialized"; return 0
         fi ;;
  esac
  echo "POST $1: $code $(cat "$answer" 2>/dev/null)" >&2
  return 1
}

echo "waiting for every member to answer /livez…"
for url in $(echo "$COUPON_RAFT_URLS" | tr ',' ' '); do
  until curl -fsS -o /dev/null "$url/livez"; do sleep 2; done
  echo "  $url up"
done
until post /v1/raft/initialize "$dir/members.json"; do sleep 3; done
echo "waiting for a leader…"
until curl -fsS -o /dev/null "${RAFT_URL}/readyz"; do sleep 2; done
until post /v1/cluster/init "$dir/regions.json"; do sleep 3; done
curl -fsS "${RAFT_URL}/v1/cluster/members"
echo
rm -f "$answer"
echo "bootstrap done"
