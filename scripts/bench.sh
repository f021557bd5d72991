#!/usr/bin/env bash
# The reproducible benchmark of dpop-guard: builds in release, then
#   1. the load benchmark (crates/dpop-bench): (a) axum hello, (b) axum + bare ES256 verify,
#      (c) axum + DpopLayer, (d) actix-web + Dpop, and (c) with the RedisReplayStore over plain
#      TCP (skipped without a Redis on 127.0.0.1:6379), over TLS and on a 3-master Cluster
#      (throw-away servers from scripts/redis-test-servers.sh, stopped on exit; skipped without
#      redis-server, redis-cli and openssl), each Redis row also as a ratio to (c) in memory;
#      the servers take turns, each in its own process;
#   2. the criterion benches verify/full vs verify/signature_only (dpop-core) and
#      verify/full_with_jwt_cached vs verify/signature_only (dpop-bench), with their ratios;
#   3. the in-memory replay store's bytes per entry (dpop-core example replay_memory) and its
#      inserts per second from 1, 2, 4 and 8 threads (dpop-core bench replay_concurrency);
# and prints one summary. About 5 minutes on a 2-core VM once built.
#
# Every proof of the load run is signed by one client key, at the full rate, and (c) and (d) use
# the default in-memory replay store: a busy client must never be refused, so any non-2xx
# response fails the run (the `errors` column). One key also means one Cluster hash slot (the
# store's `{<client>}` hash tag): one master takes every write, so the Cluster row measures the
# cluster client's path, not how a Cluster spreads many clients.
#
# Environment: DURATION (s, default 10), WARMUP (s per round, default 0.5), CONNECTIONS (default 32),
# MEASUREMENT_TIME (criterion, s, default 5); DPOP_TLS_PORT, DPOP_CLUSTER_BASE_PORT move the
# throw-away Redis servers (default 16390, 16391-16393). Extra arguments go to `dpop-bench run`
# after the Redis ones, e.g.
#   scripts/bench.sh --servers bare,axum --server-workers 2 --server-cpus 0,1 --no-pin
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-0.5}"
CONNECTIONS="${CONNECTIONS:-32}"
MEASUREMENT_TIME="${MEASUREMENT_TIME:-5}"
OUT="$(mktemp -d)"
REDIS_DIR="$OUT/redis"
# Also after a half-failed start: `stop` stops whatever has a pid file.
cleanup() {
    "$ROOT/scripts/redis-test-servers.sh" stop "$REDIS_DIR" || true
    rm -rf "$OUT"
}
trap cleanup EXIT

start=$(date +%s)
echo "== build (release)"
cargo build --locked --release -p dpop-bench
cargo build --locked --release -p dpop-core --example replay_memory
cargo bench --locked -p dpop-core --bench verify --no-run
cargo bench --locked -p dpop-bench --bench guard --no-run
cargo bench --locked -p dpop-core --bench replay_concurrency --no-run
built=$(date +%s)

echo
echo "== machine"
model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
echo "$(nproc) CPUs, ${model:-unknown CPU}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
busy="$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 20 { printf "%s (%s%%) ", $2, $1 }')"
if [ -n "$busy" ]; then
    echo "warning: other processes are using CPU, results will be noisy: $busy"
fi

echo
echo "== Redis TLS and Cluster (throw-away servers)"
redis_args=()
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v openssl >/dev/null; then
    if exports="$("$ROOT/scripts/redis-test-servers.sh" start "$REDIS_DIR")"; then
        # Lines `export NAME=VALUE`: read, not eval'd.
        while IFS='=' read -r name value; do
            case "$name" in
            "export DPOP_REDIS_TLS_URL") redis_args+=(--redis-tls-url "$value") ;;
            "export DPOP_REDIS_TLS_CA") redis_args+=(--redis-ca "$value") ;;
            "export DPOP_REDIS_CLUSTER_URLS") redis_args+=(--redis-cluster-urls "$value") ;;
            esac
        done <<<"$exports"
        echo "started: ${redis_args[*]}"
    else
        echo "warning: scripts/redis-test-servers.sh could not start them: the TLS and Cluster rows are skipped"
    fi
else
    echo "no redis-server, redis-cli or openssl: the TLS and Cluster rows are skipped"
fi

echo
echo "== load benchmark"
"$TARGET_DIR/release/dpop-bench" run --duration "$DURATION" --warmup "$WARMUP" --connections "$CONNECTIONS" \
    ${redis_args[@]+"${redis_args[@]}"} "$@" | tee "$OUT/load.txt"
# Idle, but nothing below needs them.
"$ROOT/scripts/redis-test-servers.sh" stop "$REDIS_DIR" || true

echo
echo "== criterion: dpop-core verify"
cargo bench --locked -p dpop-core --bench verify -- --measurement-time "$MEASUREMENT_TIME"
# Read right away: dpop-bench's bench below writes verify/signature_only again.
"$TARGET_DIR/release/dpop-bench" criterion-ratio "$TARGET_DIR/criterion" verify/full verify/signature_only \
    | tee "$OUT/core.txt"

echo
echo "== criterion: dpop-bench guard (DpopGuard::authorize with a cached JWT)"
cargo bench --locked -p dpop-bench --bench guard -- --measurement-time "$MEASUREMENT_TIME"
"$TARGET_DIR/release/dpop-bench" criterion-ratio "$TARGET_DIR/criterion" verify/full_with_jwt_cached \
    verify/signature_only | tee "$OUT/guard.txt"

echo
echo "== in-memory replay store: memory per entry"
"$TARGET_DIR/release/examples/replay_memory" | tee "$OUT/memory.txt"

echo
echo "== criterion: in-memory replay store, inserts from 1, 2, 4, 8 threads"
cargo bench --locked -p dpop-core --bench replay_concurrency -- --measurement-time "$MEASUREMENT_TIME" \
    | tee "$OUT/concurrency.txt"

end=$(date +%s)
echo
echo "================================ summary ================================"
grep -E '^(machine|load|placement|calibration) ' "$OUT/load.txt" || true
echo
grep -E '^\|' "$OUT/load.txt" || true
echo
# (c)+Redis ÷ (c), (c)+Redis TLS ÷ (c), (c)+Redis Cluster ÷ (c), or why they were skipped.
grep -E '^(target |\(c\)\+Redis( TLS| Cluster)? ÷ \(c\))' "$OUT/load.txt" || true
echo
echo "criterion medians (target: full ≤ 1.10 × signature_only, full_with_jwt_cached ≤ 1.15 ×)"
cat "$OUT/core.txt" "$OUT/guard.txt"
echo
grep -E 'bytes per entry' "$OUT/memory.txt" || true
echo "replay store inserts/s over all threads (median; beyond the CPU count: contention, not speed)"
awk '/^replay_insert/ { name = $1 } /thrpt:/ && name { print "  " name, $4, $5; name = "" }' "$OUT/concurrency.txt" || true
echo
echo "time: build $((built - start)) s, benchmarks $((end - built)) s, total $((end - start)) s"
