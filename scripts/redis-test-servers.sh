#!/usr/bin/env bash
# Throw-away Redis servers on loopback for the dpop-redis benchmarks: one TLS-only server with
# a CA made on the spot, and a three-master Cluster. Nothing is persisted.
#
#   scripts/redis-test-servers.sh start DIR   # start; prints the variables the examples read
#   scripts/redis-test-servers.sh stop DIR    # stop what `start DIR` started, remove DIR
#
# Ports: TLS 16390, Cluster 16391-16393 (and their bus ports, + 10000). Override with
# DPOP_TLS_PORT and DPOP_CLUSTER_BASE_PORT; `start` refuses ports already in use. If `start`
# fails half-way, `stop DIR` still stops what it started. The tests do not need this script:
# they start their own servers.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
tls_port=${DPOP_TLS_PORT:-16390}
base=${DPOP_CLUSTER_BASE_PORT:-16391}
cluster_ports=("$base" "$((base + 1))" "$((base + 2))")

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
    for _ in $(seq 200); do listening "$1" && return 0; sleep 0.05; done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}

case "$cmd" in
start)
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null && command -v openssl >/dev/null \
        || { echo "needs redis-server, redis-cli and openssl" >&2; exit 1; }
    # Someone else's server there would pass wait_port and be used (and killed by nobody).
    for port in "$tls_port" "${cluster_ports[@]}" "${cluster_ports[@]/%/+10000}"; do
        port=$((port))
        if listening "$port"; then
            echo "127.0.0.1:$port is in use: pick other ports with DPOP_TLS_PORT, DPOP_CLUSTER_BASE_PORT" >&2
            exit 1
        fi
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # A CA and a server certificate for 127.0.0.1 and localhost.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=dpop-redis test CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=dpop-redis test server" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/san.ext" -out "$dir/server.crt" 2>/dev/null
    common=(--bind 127.0.0.1 --save "" --appendonly no --daemonize yes --dir "$dir")
    redis-server "${common[@]}" --port 0 --tls-port "$tls_port" --tls-cert-file "$dir/server.crt" \
        --tls-key-file "$dir/server.key" --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no \
        --pidfile "$dir/tls.pid" --logfile "$dir/tls.log"
    for port in "${cluster_ports[@]}"; do
        redis-server "${common[@]}" --port "$port" --cluster-enabled yes \
            --cluster-config-file "nodes-$port.conf" --pidfile "$dir/cluster-$port.pid" \
            --logfile "$dir/cluster-$port.log"
    done
    wait_port "$tls_port"
    for port in "${cluster_ports[@]}"; do wait_port "$port"; done
    redis-cli --cluster create "${cluster_ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null
    for port in "${cluster_ports[@]}"; do
        for _ in $(seq 200); do
            redis-cli -p "$port" cluster info | grep -q cluster_state:ok && break
            sleep 0.05
        done
    done
    echo "export DPOP_REDIS_TLS_URL=rediss://127.0.0.1:$tls_port"
    echo "export DPOP_REDIS_TLS_CA=$dir/ca.crt"
    echo "export DPOP_REDIS_CLUSTER_URLS=$(printf 'redis://127.0.0.1:%s,' "${cluster_ports[@]}" | sed 's/,$//')"
    ;;
stop)
    [ -d "$dir" ] || exit 0
    for pidfile in "$dir"/*.pid; do
        [ -e "$pidfile" ] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
    done
    sleep 0.2
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
