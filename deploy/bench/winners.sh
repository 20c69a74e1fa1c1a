#!/usr/bin/env bash
# Winners per second against the raw commit rate of the same Postgres, in
# one run (docs/benchmarks.md, "Winners"): a 20,000-seat campaign redeemed
# by 20,000 distinct users through `couponctl bench burst`, then pgbench
# inserting unique rows, one per transaction, into the region's primary
# (same fsync, same synchronous standby) at the same client count as the
# node's Postgres pool.
#
#   deploy/bench/winners.sh [region] [seats] [--direct]
set -euo pipefail
cd "$(dirname "$0")/../.."
region=${1:-us}
seats=${2:-20000}
shift $(( $# > 2 ? 2 : $# )) || true
file=.coupon/dev-cluster.json
pg=$(python3 -c "import json,sys; print(json.load(open('$file'))['regions']['$region']['postgres'])")
clients=${PGBENCH_CLIENTS:-32}
./target/release/couponctl bench burst --region "$region" --attempts "$seats" --seats "$seats" \
  --concurrency 200 "$@"
pgbench=$(ls /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -1)
psql "$pg" -qc "DROP TABLE IF EXISTS bench_unique; CREATE TABLE bench_unique (k text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())"
script=$(mktemp)
echo "INSERT INTO bench_unique (k) VALUES (md5(random()::text || clock_timestamp()::text));" > "$script"
echo "raw unique-insert commits (pgbench, $clients clients, 10 s, one row per transaction):"
"$pgbench" -n -c "$clients" -j 2 -T 10 -f "$script" "$pg" | grep -E "^tps|latency average"
psql "$pg" -qc "DROP TABLE bench_unique"
rm -f "$script"
