#!/usr/bin/env bash
# Runs the official protocol test suites against the conformance host, started twice:
#   the default host (Engine.IO 3 refused):           engine.io-v4, socket.io-v5            57 tests
#   the host with ALLOW_EIO3=true (Engine.IO 3 too):   engine.io-v3, engine.io-v4, socket.io-v5
#                                                      23 (+1 the suite skips) + 57 tests
# so that serving Engine.IO 3 is shown to break nothing of v4/v5 (engine.io's allowEIO3 breaks one v4 test).
#   scripts/protocol-suites.sh [SUITES_DIR]    (default ../shared/protocol-suites)
#   PROTOCOL_SUITES_RUNS=N scripts/protocol-suites.sh   runs every suite N times in a row (default 1)
# The suites are copied to a temporary folder first (their folder may be read-only) and their
# hardcoded http://localhost:3000 is rewritten in each copy to a free port, where its host listens.
# Strict: every run of every suite must pass; there is no retry.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-../shared/protocol-suites}
if [ ! -d "$src/engine.io-v4" ] || [ ! -d "$src/engine.io-v3" ]; then
  echo "protocol suites not found at $src" >&2
  exit 1
fi

# the suites hardcode their URL; the copy is rewritten to a free loopback port
grep -qE 'const URL = "http://localhost:[0-9]+"' "$src/engine.io-v3/test-suite.js" "$src/engine.io-v4/test-suite.js" "$src/socket.io-v5/test-suite.js" || {
  echo "protocol-suites: the suites no longer say 'const URL = \"http://localhost:PORT\"'; update this script" >&2
  exit 1
}
port_taken() {
  # anything listening on the port, on any address (IPv4 or IPv6)
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
free_port() {
  local candidate
  for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 30000))
    if ! port_taken "$candidate" && [ "$candidate" != "${port:-}" ]; then echo "$candidate"; return 0; fi
  done
  echo "protocol-suites: no free port found" >&2; return 1
}
port=$(free_port)      # the default host
port3=$(free_port)     # the host with ALLOW_EIO3=true

# one copy of the suites per host: "<suite>" for the default one, "eio3-<suite>" for the other
work=$(mktemp -d)
hosts=""
trap 'for h in $hosts; do kill $h 2>/dev/null || true; wait $h 2>/dev/null || true; done; rm -rf "$work"' EXIT
cp -r "$src/engine.io-v4" "$src/socket.io-v5" "$work/"
for suite in engine.io-v3 engine.io-v4 socket.io-v5; do cp -r "$src/$suite" "$work/eio3-$suite"; done
sed -i -E "s#(localhost):[0-9]+#\1:$port#g" "$work/engine.io-v4/test-suite.js" "$work/socket.io-v5/test-suite.js"
sed -i -E "s#(localhost):[0-9]+#\1:$port3#g" "$work"/eio3-*/test-suite.js
for suite in engine.io-v4 socket.io-v5 eio3-engine.io-v3 eio3-engine.io-v4 eio3-socket.io-v5; do
  (cd "$work/$suite" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
done

dotnet build tests/Evolution.Events.ConformanceHost -c Release -nologo -v quiet
start_host() { # PORT ALLOW_EIO3
  ALLOW_EIO3=$2 dotnet tests/Evolution.Events.ConformanceHost/bin/Release/net10.0/Evolution.Events.ConformanceHost.dll --port "$1" &
  local host=$!
  hosts="$hosts $host"
  for _ in $(seq 1 100); do
    kill -0 "$host" 2>/dev/null || { echo "protocol-suites: the conformance host exited (port $1 taken meanwhile?)" >&2; return 1; }
    if curl -fs "http://localhost:$1/engine.io/?EIO=4&transport=polling" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "protocol-suites: the conformance host did not answer on port $1 within 10 s" >&2
  return 1
}
start_host "$port" false
start_host "$port3" true

runs=${PROTOCOL_SUITES_RUNS:-1}
passed=0; failed=0; bad_runs=0
for run in $(seq 1 "$runs"); do
  run_failed=0
  for suite in engine.io-v4 socket.io-v5 eio3-engine.io-v3 eio3-engine.io-v4 eio3-socket.io-v5; do
    out=$(cd "$work/$suite" && npx mocha --reporter dot test-suite.js 2>&1) && ok=1 || ok=0
    p=$(echo "$out" | grep -oE '[0-9]+ passing' | grep -oE '[0-9]+' || echo 0)
    f=$(echo "$out" | grep -oE '[0-9]+ failing' | grep -oE '[0-9]+' || echo 0)
    if [ "$ok" -ne 1 ] && [ "${f:-0}" -eq 0 ]; then f=1; fi # mocha failed without a count (crash, timeout)
    prefix=""; [ "$runs" -gt 1 ] && prefix="run $run/$runs: "
    name=$suite; [ "${suite#eio3-}" != "$suite" ] && name="${suite#eio3-} (ALLOW_EIO3 host)"
    echo "$prefix$name: ${p:-0} passing, ${f:-0} failing"
    if [ "$ok" -ne 1 ]; then echo "$out" | sed -n '/failing/,$p' | head -40; run_failed=1; fi
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  done
  bad_runs=$((bad_runs + run_failed))
done
expected=$(((57 + 23 + 57) * runs))
if [ $((passed + failed)) -lt "$expected" ]; then
  echo "protocol-suites: $((expected - passed - failed)) of the $expected tests did not report; counted as failed" >&2
  failed=$((expected - passed))
fi
[ "$runs" -gt 1 ] && echo "protocol-suites: $((runs - bad_runs)) of $runs runs passed all $((expected / runs))"
echo "protocol-suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -eq "$expected" ]
