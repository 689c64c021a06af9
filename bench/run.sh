#!/usr/bin/env bash
# The fan-out comparison, end to end: builds the gateway, the ceiling, the load generator and the Node
# peer; runs the scenarios S1-S6 against the targets (below), alternating their order every round
# (A B C, C B A, A B C); a fresh server for every run; then writes docs/performance.md (medians, ratios,
# targets, A/B, charts) from bench/results/<stamp>.jsonl (and the newest memory-*.jsonl of bench/memory.sh).
#
#   bench/run.sh                 # 3 rounds, S1-S5 (S6 in the first round), gateway gateway-http node ceiling
#                                # (about 22 minutes on 2 cores; 26.5 with gateway-base as a fifth target)
#   bench/run.sh --quick         # 1 round, small scenarios (about 1 minute): a smoke run
#   options: --rounds N  --scenarios "S1 S3"  --targets "gateway node"  --s3-seconds 4  --s6-rounds N
#            (--s3-seconds: each S3 phase's length, default 12: a p99 over 300 events at 25 ev/s, not the one
#            slowest event of a shorter phase)
#            --no-report  --out docs/performance.md (where the report goes)
#            --baseline bench/results/<earlier>.jsonl (the gateway before the change: "today's" S3 p99, now vs before)
#   environment: S3_RATES=25,25,25 (S3's phases, events per second; default 25,50,100,200)
#
# Targets: name -> server and extra environment (one line each in TARGETS_DEF, bench/lib.sh; a variant is one line):
#   gateway        the gateway, defaults                       node          Node socket.io 4.8.1 (bench/node-peer)
#   gateway-http   the gateway, WEBSOCKET_RAW_UPGRADE=false    ceiling       bare Kestrel, WebSocket served from a
#   ceiling-http   bare Kestrel, standard upgrade (optional)                  connection middleware (raw transport)
#   gateway-base   the gateway built from another commit (optional; BASE_GATEWAY_DLL=<its Release dll>): the A/B of a
#                  change; in a run with it, "today's" S3 p99 is this target's, measured side by side
#
# Loopback only (servers on 127.0.0.1; clients from 127.0.0.x); every loop is bounded.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

QUICK=0; ROUNDS=3; SCENARIOS="S1 S2 S3 S4 S5 S6"; TARGETS="gateway gateway-http node ceiling"; S3_SECONDS=12; REPORT=1
S6_ROUNDS=1; OUT=docs/performance.md; BASELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; ROUNDS=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --scenarios) SCENARIOS=$2; shift ;;
    --targets) TARGETS=$2; shift ;;
    --s3-seconds) S3_SECONDS=$2; shift ;;
    --s6-rounds) S6_ROUNDS=$2; shift ;;
    --no-report) REPORT=0 ;;
    --out) OUT=$2; shift ;;
    --baseline) BASELINE=$2; shift ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

for t in $TARGETS; do
  if [ -z "$(target_server "$t")" ]; then echo "unknown target $t (known: $(printf '%s\n' "$TARGETS_DEF" | awk 'NF { printf "%s ", $1 }'))" >&2; exit 2; fi
done

# Open files: as many as allowed (the hard limit here is 20,000 per process); S6 needs ~18,000 in both the
# server and the load generator, so it shrinks to what fits (and says so).
NOFILE_HARD=$(ulimit -Hn)
if [ "$NOFILE_HARD" = unlimited ] || [ "$NOFILE_HARD" -ge 200000 ]; then ulimit -n 200000 2>/dev/null || true
else ulimit -n "$NOFILE_HARD" 2>/dev/null || true; fi
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1000000
S6_CLIENTS=18000
if [ $QUICK = 1 ]; then S6_CLIENTS=2000; fi
if [ $((S6_CLIENTS + 300)) -gt "$NOFILE" ]; then
  S6_CLIENTS=$((NOFILE - 300))
  echo "note: open-file limit $NOFILE (hard $NOFILE_HARD): S6 holds $S6_CLIENTS clients instead of 18,000" >&2
fi
KEY=bench-$RANDOM$RANDOM
PORT=$((20000 + RANDOM % 10000)) # fresh ports, clear of other benches and below the ephemeral range (32768+)
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
if [ $REPORT = 1 ]; then dotnet build -c Release -v q -nologo bench/Evolution.Events.BenchReport >/dev/null; fi
if [ ! -d bench/node-peer/node_modules/socket.io ]; then (cd bench/node-peer && npm ci --no-audit --no-fund >/dev/null); fi

LOADGEN="dotnet bench/Evolution.Events.LoadGen/bin/Release/net10.0/Evolution.Events.LoadGen.dll"
SERVER_PID=0

trap stop_server EXIT

scenario_args() { # scenario
  if [ $QUICK = 1 ]; then
    case "$1" in
      S1) echo "--events 300 --warmup 20" ;;
      S2) echo "--clients 2000 --namespaces 20 --events 400 --warmup 40" ;;
      S3) echo "--rates 50,200 --seconds 2 --warmup 20" ;;
      S4) echo "--clients 2000 --settle 1" ;;
      S5) echo "--clients 2000 --events 20 --warmup 4" ;;
      S6) echo "--clients $S6_CLIENTS --settle 0.5 --hold 0" ;;
    esac
  else
    case "$1" in
      S3) echo "--seconds $S3_SECONDS ${S3_RATES:+--rates $S3_RATES}" ;;
      S6) echo "--clients $S6_CLIENTS --settle 3 --hold 2" ;;
      *) echo "" ;;
    esac
  fi
}

BASE_COMMIT=""
if [ -n "${BASE_GATEWAY_DLL:-}" ]; then BASE_COMMIT=$(git -C "$(dirname "$BASE_GATEWAY_DLL")" rev-parse --short HEAD 2>/dev/null || echo unknown); fi
START=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
  order=$TARGETS
  if [ $((round % 2)) = 0 ]; then order=$(echo $TARGETS | tr ' ' '\n' | tac | tr '\n' ' '); fi
  for s in $SCENARIOS; do
    if [ "$s" = S6 ] && [ "$round" -gt "$S6_ROUNDS" ]; then continue; fi
    for t in $order; do
      printf '== round %s %s %-8s ' "$round" "$s" "$t"
      if ! start_server "$t"; then stop_server; continue; fi
      # shellcheck disable=SC2046
      out=$(timeout 300 $LOADGEN "$s" --url "http://127.0.0.1:$PORT" --apikey "$KEY" --pid "$SERVER_PID" --label "$t" \
            $(scenario_args "$s") 2>"$LOGS/loadgen.err" || true)
      stop_server
      line=$(printf '%s\n' "$out" | grep '^{' | tail -1 || true)
      if [ -z "$line" ]; then echo "no result"; tail -3 "$LOGS/loadgen.err" >&2; continue; fi
      prefix="\"round\":$round,\"quick\":$QUICK,\"loadavg\":$(cut -d' ' -f1 /proc/loadavg),\"target_env\":\"$(target_env "$t" | sed 's/ *$//')\","
      if [ "$t" = gateway-base ]; then prefix="$prefix\"base_commit\":\"$BASE_COMMIT\","; fi
      printf '%s\n' "$line" | awk -v p="$prefix" '{ print "{" p substr($0, 2) }' >> "$RESULTS"
      printf '%s\n' "$line" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("msg/s=%s  p99=%sms  cpu/msg=%sus  mem/conn=%sKB  lost=%s  connected=%s  loadgen=%sus/msg" % (round(d["msgs_per_s"] or 0), d["p99_ms"], d["server_us_per_msg"], d["mem_per_conn_kb"], d["lost"], d["connected"], d["loadgen_us_per_msg"]))' 2>/dev/null || echo "$line"
    done
  done
done
echo "== runs took $(( $(date +%s) - START )) s; results: ${RESULTS#$ROOT/}; load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ $REPORT = 1 ]; then
  MEMORY=$(ls -t "$RESULTS_DIR"/memory-*.jsonl 2>/dev/null | head -1 || true)
  dotnet bench/Evolution.Events.BenchReport/bin/Release/net10.0/Evolution.Events.BenchReport.dll \
    --results "$RESULTS" ${MEMORY:+--memory "$MEMORY"} ${BASELINE:+--baseline "$BASELINE"} --out "$OUT" --charts "$(dirname "$OUT")/performance"
fi
