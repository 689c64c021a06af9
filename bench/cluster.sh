#!/usr/bin/env bash
# Scale-out figures: deliveries per second and server CPU per message for 1, 2 and 3 gateway nodes on this
# machine, in one run. Every node runs with REDIS_URI on one redis-server started here (a fresh one per node
# count) and REDIS_ADAPTER (streams by default); the load generator spreads its Socket.IO clients over the nodes
# (client i -> node i % N) and posts round-robin to them, so every event crosses the event bus. Server CPU is the
# nodes' CPU summed; Redis's CPU is reported beside it.
#
#   bench/cluster.sh                        # S1-like: 1,000 clients on 1 namespace, 3,000 events / 50 per POST
#   bench/cluster.sh --nodes "1 2" --mode pubsub --args "--clients 2000 --namespaces 20"
#
# Loopback only; every process started here is stopped by pid; every loop is bounded.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

NODES="1 2 3"; MODE=streams; EXTRA="--events 3000 --warmup 100"; SCENARIO=S1
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) NODES=$2; shift ;;
    --mode) MODE=$2; shift ;;
    --args) EXTRA=$2; shift ;;
    --scenario) SCENARIO=$2; shift ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
command -v redis-server >/dev/null || { echo "cluster.sh: redis-server is not installed" >&2; exit 2; }
KEY=bench-$RANDOM$RANDOM
BASE_PORT=$((20000 + RANDOM % 10000)) # below the ephemeral range (32768+)
LOGS=$(mktemp -d /tmp/evo-cluster.XXXXXX)
RESULTS_DIR=$ROOT/bench/results
mkdir -p "$RESULTS_DIR"
RESULTS=$RESULTS_DIR/cluster-$(date -u +%Y%m%dT%H%M%SZ).jsonl
: > "$RESULTS"
PIDS=()
REDIS_PID=0

echo "== building (Release)"
dotnet build -c Release -v q -nologo src/Evolution.Events.Gateway >/dev/null
dotnet build -c Release -v q -nologo bench/Evolution.Events.LoadGen >/dev/null
LOADGEN="dotnet bench/Evolution.Events.LoadGen/bin/Release/net10.0/Evolution.Events.LoadGen.dll"

stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
  if [ "$REDIS_PID" != 0 ]; then kill "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; REDIS_PID=0; fi
}
trap stop_all EXIT

cpu_s() { # pid -> user+sys CPU seconds
  awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); split($0, f, " "); printf "%.2f", (f[12] + f[13]) / t }' "/proc/$1/stat"
}

for n in $NODES; do
  port=$BASE_PORT; BASE_PORT=$((BASE_PORT + 10))
  redis_port=$((port + 9))
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$LOGS/redis-$n.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  urls=""; pids=""
  for i in $(seq 1 "$n"); do
    p=$((port + i))
    SERVER_PORT=$p AUTHENTICATION_API_KEY=$KEY DATABASE_PATH=$LOGS/gw-$n-$i.db LOG_LEVEL=Warning \
      WEBSOCKET_MAX_CONNECTIONS=200000 REDIS_URI="redis://127.0.0.1:$redis_port" REDIS_ADAPTER=$MODE NODE_ID="node-$i" \
      dotnet src/Evolution.Events.Gateway/bin/Release/net10.0/Evolution.Events.Gateway.dll >"$LOGS/gw-$n-$i.log" 2>&1 &
    PIDS+=($!)
    urls="$urls${urls:+,}http://127.0.0.1:$p"; pids="$pids${pids:+,}$!"
  done
  for i in $(seq 1 "$n"); do
    p=$((port + i)); ok=0
    for _ in $(seq 1 300); do
      if curl -s -o /dev/null -m 1 "http://127.0.0.1:$p/health/ready"; then ok=1; break; fi
      sleep 0.1
    done
    [ $ok = 1 ] || { echo "node $i of $n did not start; log:" >&2; tail -5 "$LOGS/gw-$n-$i.log" >&2; exit 1; }
  done
  printf '== %s node(s) (%s) ' "$n" "$MODE"
  redis_cpu0=$(cpu_s "$REDIS_PID")
  # shellcheck disable=SC2086
  out=$(timeout 300 $LOADGEN "$SCENARIO" --url "$urls" --apikey "$KEY" --pid "$pids" --label "$n-nodes-$MODE" $EXTRA \
        2>"$LOGS/loadgen-$n.err" || true)
  redis_cpu1=$(cpu_s "$REDIS_PID")
  stop_all
  line=$(printf '%s\n' "$out" | grep '^{' | tail -1 || true)
  if [ -z "$line" ]; then echo "no result"; tail -3 "$LOGS/loadgen-$n.err" >&2; continue; fi
  redis_cpu=$(python3 -c "print(round($redis_cpu1 - $redis_cpu0, 2))")
  printf '%s\n' "$line" | sed "s/^{/{\"nodes\":$n,\"mode\":\"$MODE\",\"redis_cpu_s\":$redis_cpu,/" >> "$RESULTS"
  printf '%s\n' "$line" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("deliveries/s=%s  p50=%sms p99=%sms  server cpu=%ss (%sus/msg)  lost=%s dup=%s  loadgen=%sus/msg" % (round(d["msgs_per_s"] or 0), d["p50_ms"], d["p99_ms"], d["server_cpu_s"], d["server_us_per_msg"], d["lost"], d.get("dups"), d["loadgen_us_per_msg"]))' 2>/dev/null || echo "$line"
  echo "   redis cpu=${redis_cpu}s"
done
echo "== results: ${RESULTS#$ROOT/}"
rm -rf "$LOGS"
