#!/usr/bin/env bash
# Runs the official Engine.IO v4 and Socket.IO v5 protocol test suites against the conformance host.
#   scripts/protocol-suites.sh [SUITES_DIR]    (default ../shared/protocol-suites)
# The suites are copied to a temporary folder first (their folder may be read-only). A suite that
# fails is run once more: "forcefully closes the session" races inside the suite itself (about 1 run
# in 60, against the reference server too); a second failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-../shared/protocol-suites}
if [ ! -d "$src/engine.io-v4" ]; then
  echo "protocol suites not found at $src" >&2
  exit 1
fi

work=$(mktemp -d)
cp -r "$src/engine.io-v4" "$src/socket.io-v5" "$work/"
for suite in engine.io-v4 socket.io-v5; do
  (cd "$work/$suite" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
done

dotnet build tests/Evolution.Events.ConformanceHost -c Release -nologo -v quiet
dotnet tests/Evolution.Events.ConformanceHost/bin/Release/net10.0/Evolution.Events.ConformanceHost.dll --port 3000 &
host=$!
trap 'kill $host 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  kill -0 "$host" 2>/dev/null || { echo "the conformance host exited (is port 3000 taken?)" >&2; exit 1; }
  curl -fs "http://localhost:3000/engine.io/?EIO=4&transport=polling" >/dev/null 2>&1 && break
  sleep 0.1
done

passed=0; failed=0
for suite in engine.io-v4 socket.io-v5; do
  for attempt in 1 2; do
    out=$(cd "$work/$suite" && npx mocha --reporter dot test-suite.js 2>&1) && ok=1 || ok=0
    p=$(echo "$out" | grep -oE '[0-9]+ passing' | grep -oE '[0-9]+' || echo 0)
    f=$(echo "$out" | grep -oE '[0-9]+ failing' | grep -oE '[0-9]+' || echo 0)
    echo "$suite (attempt $attempt): ${p:-0} passing, ${f:-0} failing"
    if [ "$ok" -eq 1 ]; then break; fi
    echo "$out" | tail -30
  done
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
echo "protocol-suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -eq 57 ]
