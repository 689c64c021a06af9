#!/usr/bin/env bash
# What stays per socket, by owner: for each target, a fresh server; a `dotnet-gcdump` before any client
# (baseline), then N idle Socket.IO clients held by the load generator (S4 --hold), RSS, a second
# `dotnet-gcdump` (it forces a full GC: live objects only), RSS after that GC; the difference of the two dumps
# per type, divided by the clients, grouped by owner (Kestrel/transport, Engine.IO, Socket.IO, gateway,
# BCL collections/strings, other) -> one line per target in bench/results/memory-<stamp>.jsonl, which
# bench/run.sh's report (BenchReport --memory) renders in docs/performance.md.
#
#   bench/memory.sh                                   # gateway gateway-http ceiling, 10,000 clients (about 2 minutes)
#   bench/memory.sh --targets "gateway" --clients 2000
#   bench/memory.sh --targets "gateway" --keep        # keep the dumps and their reports (every type, not only the top 25)
#
# Targets as in bench/run.sh (bench/lib.sh). Needs the local tool: dotnet tool restore (.config/dotnet-tools.json).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

TARGETS="gateway gateway-http ceiling"; CLIENTS=10000; SETTLE=3; KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) TARGETS=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --settle) SETTLE=$2; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n 2,14p "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for t in $TARGETS; do
  case "$(target_server "$t")" in
    gateway|ceiling) ;;
    node) echo "memory.sh: $t is not a .NET process (dotnet-gcdump); use S4 of bench/run.sh for its RSS" >&2; exit 2 ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ $((CLIENTS + 300)) -gt "$(ulimit -n)" ]; then
  echo "open-file limit $(ulimit -n) is below $CLIENTS clients + 300" >&2; exit 2
fi
KEY=bench-$RANDOM$RANDOM
PORT=$((20000 + RANDOM % 10000)) # below the ephemeral range (32768+) the load generator's clients use
LOGS=$(mktemp -d /tmp/evo-memory.XXXXXX)
RESULTS_DIR=$ROOT/bench/results
mkdir -p "$RESULTS_DIR"
OUT=$RESULTS_DIR/memory-$(date -u +%Y%m%dT%H%M%SZ).jsonl
: > "$OUT"

echo "== building (Release), restoring dotnet-gcdump"
dotnet tool restore >/dev/null
dotnet build -c Release -v q -nologo src/Evolution.Events.Gateway >/dev/null
dotnet build -c Release -v q -nologo bench/Evolution.Events.Ceiling >/dev/null
dotnet build -c Release -v q -nologo bench/Evolution.Events.LoadGen >/dev/null
LOADGEN="dotnet bench/Evolution.Events.LoadGen/bin/Release/net10.0/Evolution.Events.LoadGen.dll"

LOADGEN_PID=0
cleanup() {
  if [ "$LOADGEN_PID" != 0 ]; then kill "$LOADGEN_PID" 2>/dev/null || true; wait "$LOADGEN_PID" 2>/dev/null || true; fi
  stop_server
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
gcdump() { # pid file
  timeout 300 dotnet tool run dotnet-gcdump collect -p "$1" -o "$2" >"$LOGS/gcdump.log" 2>&1
  timeout 300 dotnet tool run dotnet-gcdump report "$2" > "$2.txt"
}

for t in $TARGETS; do
  echo "== $t: $CLIENTS idle clients"
  start_server "$t" || { stop_server; continue; }
  # warm the server's paths with a few clients, so that one-time costs (JIT, pools) are in the baseline
  timeout 60 $LOADGEN S4 --url "http://127.0.0.1:$PORT" --apikey "$KEY" --clients 50 --settle 0.5 >/dev/null 2>&1 || true
  sleep 1
  gcdump "$SERVER_PID" "$LOGS/$t-base.gcdump"
  rss0=$(rss_kb "$SERVER_PID")
  $LOADGEN S4 --url "http://127.0.0.1:$PORT" --apikey "$KEY" --clients "$CLIENTS" --settle 0 --hold 900 --timeout 1000 \
    --label "$t" >"$LOGS/loadgen.out" 2>"$LOGS/loadgen.err" &
  LOADGEN_PID=$!
  connected=""
  for _ in $(seq 1 1200); do
    connected=$(sed -n 's/^\[S4\] connected \([0-9]*\)\/.*/\1/p' "$LOGS/loadgen.err" | head -1)
    [ -n "$connected" ] && break
    kill -0 "$LOADGEN_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$connected" ]; then echo "   the load generator did not connect:" >&2; tail -5 "$LOGS/loadgen.err" >&2; cleanup; LOADGEN_PID=0; continue; fi
  sleep "$SETTLE"
  rss1=$(rss_kb "$SERVER_PID")
  gcdump "$SERVER_PID" "$LOGS/$t-held.gcdump"
  rss2=$(rss_kb "$SERVER_PID")
  kill "$LOADGEN_PID" 2>/dev/null || true; wait "$LOADGEN_PID" 2>/dev/null || true; LOADGEN_PID=0
  stop_server
  python3 bench/gcdump-owners.py "$LOGS/$t-base.gcdump.txt" "$LOGS/$t-held.gcdump.txt" "$connected" \
    "target=$t" "clients=$CLIENTS" "rss_before_kb=$rss0" "rss_held_kb=$rss1" "rss_after_gc_kb=$rss2" \
    "rss_per_conn_kb=$(awk -v a="$rss0" -v b="$rss1" -v n="$connected" 'BEGIN { printf "%.2f", (b - a) / n }')" \
    "rss_after_gc_per_conn_kb=$(awk -v a="$rss0" -v b="$rss2" -v n="$connected" 'BEGIN { printf "%.2f", (b - a) / n }')" \
    "loadavg=$(cut -d' ' -f1 /proc/loadavg)" >> "$OUT"
  tail -1 "$OUT" | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("   %s connected; RSS %.1f KB/conn, %.1f after a full GC; live heap %.0f B/conn: %s" % (d["connected"], d["rss_per_conn_kb"], d["rss_after_gc_per_conn_kb"], d["heap_per_conn_bytes"], ", ".join("%s %.0f" % kv for kv in d["owners"].items())))'
done
if [ "$KEEP" = 1 ]; then echo "== dumps and their reports kept in $LOGS"; else rm -rf "$LOGS"; fi
echo "== ${OUT#$ROOT/} (load average $(cut -d' ' -f1-3 /proc/loadavg))"
