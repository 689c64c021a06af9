#!/usr/bin/env bash
# The fan-out comparison, end to end: builds the gateway, the ceiling, the load generator and the Node
# peer; runs the scenarios S1-S5 against the gateway, the Node socket.io peer and the bare-Kestrel ceiling,
# alternating the order of the targets every round (A B C, C B A, A B C); a fresh server for every run;
# then writes docs/performance.md (medians, ratios, charts) from bench/results/<stamp>.jsonl.
#
#   bench/run.sh                 # 3 rounds, all scenarios (about 8-9 minutes on 2 cores)
#   bench/run.sh --quick         # 1 round, small scenarios (about 1 minute): a smoke run
#   options: --rounds N  --scenarios "S1 S3"  --targets "gateway node"  --s3-seconds 10  --no-report
#
# Loopback only (servers on 127.0.0.1; clients from 127.0.0.x); every loop is bounded.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

QUICK=0; ROUNDS=3; SCENARIOS="S1 S2 S3 S4 S5"; TARGETS="gateway node ceiling"; S3_SECONDS=5; REPORT=1
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; ROUNDS=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --scenarios) SCENARIOS=$2; shift ;;
    --targets) TARGETS=$2; shift ;;
    --s3-seconds) S3_SECONDS=$2; shift ;;
    --no-report) REPORT=0 ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
KEY=bench-$RANDOM$RANDOM
PORT=18480
RESULTS_DIR=$ROOT/bench/results
mkdir -p "$RESULTS_DIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$RESULTS_DIR/$STAMP.jsonl
LOGS=$(mktemp -d /tmp/evo-bench.XXXXXX)
: > "$RESULTS"

echo "== building (Release)"
dotnet build -c Release -v q -nologo src/Evolution.Events.Gateway >/dev/null
dotnet build -c Release -v q -nologo bench/Evolution.Events.Ceiling >/dev/null
dotnet build -c Release -v q -nologo bench/Evolution.Events.LoadGen >/dev/null
[ $REPORT = 1 ] && dotnet build -c Release -v q -nologo bench/Evolution.Events.BenchReport >/dev/null
if [ ! -d bench/node-peer/node_modules/socket.io ]; then (cd bench/node-peer && npm ci --no-audit --no-fund >/dev/null); fi

LOADGEN="dotnet bench/Evolution.Events.LoadGen/bin/Release/net10.0/Evolution.Events.LoadGen.dll"
SERVER_PID=0

start_server() { # target
  local t=$1
  PORT=$((PORT + 1))
  case "$t" in
    gateway)
      rm -f "$LOGS"/gw.db*
      SERVER_PORT=$PORT AUTHENTICATION_API_KEY=$KEY DATABASE_PATH=$LOGS/gw.db LOG_LEVEL=Warning \
        WEBSOCKET_MAX_CONNECTIONS=200000 \
        dotnet src/Evolution.Events.Gateway/bin/Release/net10.0/Evolution.Events.Gateway.dll >"$LOGS/$t.log" 2>&1 &
      ;;
    node)
      SERVER_PORT=$PORT AUTHENTICATION_API_KEY=$KEY node bench/node-peer/server.js >"$LOGS/$t.log" 2>&1 &
      ;;
    ceiling)
      SERVER_PORT=$PORT dotnet bench/Evolution.Events.Ceiling/bin/Release/net10.0/Evolution.Events.Ceiling.dll >"$LOGS/$t.log" 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    if curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT/socket.io/?EIO=4&transport=polling"; then return 0; fi
    kill -0 $SERVER_PID 2>/dev/null || break
    sleep 0.1
  done
  echo "   $t did not start; log:" >&2; tail -5 "$LOGS/$t.log" >&2
  return 1
}

stop_server() {
  [ "$SERVER_PID" != 0 ] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=0
}
trap stop_server EXIT

scenario_args() { # scenario
  if [ $QUICK = 1 ]; then
    case "$1" in
      S1) echo "--events 300 --warmup 20" ;;
      S2) echo "--clients 2000 --namespaces 20 --events 400 --warmup 40" ;;
      S3) echo "--rates 50,200 --seconds 2 --warmup 20" ;;
      S4) echo "--clients 2000 --settle 1" ;;
      S5) echo "--clients 2000 --events 20 --warmup 4" ;;
    esac
  else
    case "$1" in
      S3) echo "--seconds $S3_SECONDS" ;;
      *) echo "" ;;
    esac
  fi
}

START=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
  order=$TARGETS
  if [ $((round % 2)) = 0 ]; then order=$(echo $TARGETS | tr ' ' '\n' | tac | tr '\n' ' '); fi
  for s in $SCENARIOS; do
    for t in $order; do
      printf '== round %s %s %-8s ' "$round" "$s" "$t"
      if ! start_server "$t"; then stop_server; continue; fi
      # shellcheck disable=SC2046
      out=$(timeout 300 $LOADGEN "$s" --url "http://127.0.0.1:$PORT" --apikey "$KEY" --pid "$SERVER_PID" --label "$t" \
            $(scenario_args "$s") 2>"$LOGS/loadgen.err" || true)
      stop_server
      line=$(printf '%s\n' "$out" | grep '^{' | tail -1 || true)
      if [ -z "$line" ]; then echo "no result"; tail -3 "$LOGS/loadgen.err" >&2; continue; fi
      printf '%s\n' "$out" | grep '^{' | tail -1 | sed "s/^{/{\"round\":$round,\"quick\":$QUICK,/" >> "$RESULTS"
      printf '%s\n' "$line" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("msg/s=%s  p99=%sms  cpu/msg=%sus  mem/conn=%sKB  lost=%s  loadgen=%sus/msg" % (round(d["msgs_per_s"] or 0), d["p99_ms"], d["server_us_per_msg"], d["mem_per_conn_kb"], d["lost"], d["loadgen_us_per_msg"]))' 2>/dev/null || echo "$line"
    done
  done
done
echo "== runs took $(( $(date +%s) - START )) s; results: ${RESULTS#$ROOT/}"

if [ $REPORT = 1 ]; then
  dotnet bench/Evolution.Events.BenchReport/bin/Release/net10.0/Evolution.Events.BenchReport.dll \
    --results "$RESULTS" --out docs/performance.md --charts docs/performance
fi
