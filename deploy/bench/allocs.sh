#!/usr/bin/env bash
# Allocator calls per attempt of one region's node during a burst
# (docs/benchmarks.md, "Allocations per attempt"): uprobes on mimalloc's
# entry points of the running node binary, counted by `perf stat` from the
# end of the token warm-up to the end of the timed burst. A count, not a
# time: it needs no hardware counters and is the same on a busy or an idle
# machine, so it can judge a change that CPU figures on 2 shared cores
# cannot resolve. The uprobes slow the node several times over: ignore the
# attempts/s of this run.
#
# Needs a running `couponctl dev up`, root and perf.
#   deploy/bench/allocs.sh [region] [attempts] [--direct]
set -euo pipefail
cd "$(dirname "$0")/../.."
region=${1:-us}
attempts=${2:-10000}
shift $(( $# > 2 ? 2 : $# )) || true
file=.coupon/dev-cluster.json
pid=$(python3 -c "import json; print(json.load(open('$file'))['regions']['$region']['pids']['node'])")
bin=$(readlink "/proc/$pid/exe")
events=()
for f in mi_malloc_aligned mi_realloc_aligned mi_zalloc_aligned; do
  perf probe -q -x "$bin" --add "couponbench:$f=$f"
  events+=("couponbench:$f")
done
cleanup() { perf probe -q -d 'couponbench:*' || true; }
trap cleanup EXIT
log=$(mktemp); stat=$(mktemp)
./target/release/couponctl bench burst --region "$region" --attempts "$attempts" --seats 1000 \
  --concurrency 200 --warm-tokens "$@" > "$log" 2>&1 &
bench=$!
until grep -q "tokens verified" "$log"; do sleep 0.1; done
# The counting window ends when this sleep is killed (perf then prints).
perf stat -e "$(IFS=,; echo "${events[*]}")" -p "$pid" -o "$stat" -- sleep 86399 &
counter=$!
wait "$bench"
pkill -f '^sleep 86399$' || true
wait "$counter" 2>/dev/null || true
grep -E "attempts/s|exactness" "$log"
awk -v n="$attempts" '/couponbench:/ {gsub(",", "", $1); s += $1; print "  " $2 ": " $1}
  END {printf "allocator calls: %d, %.1f per attempt\n", s, s / n}' "$stat"
rm -f "$log" "$stat"
