#!/usr/bin/env bash
# Installs what the tests need (Debian packages when run as root, npm packages) and runs every test.
# The README's test command. Under CI=true a missing prerequisite fails the run instead of being skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf '\n== %s\n' "$*"; }

bash scripts/install-prerequisites.sh

log "build (Release)"
dotnet build Evolution.Events.sln -c Release -nologo -v quiet

results=$(mktemp -d)
log "dotnet test"
status=0
dotnet test Evolution.Events.sln -c Release --no-build -nologo \
  --logger "console;verbosity=normal" --logger "trx" --results-directory "$results" \
  --blame-hang-timeout 5m 2>&1 | tee "$results/dotnet-test.log" || status=$?

passed=0; failed=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  p=$(grep -o 'passed="[0-9]*"' "$trx" | head -1 | tr -dc 0-9); f=$(grep -o 'failed="[0-9]*"' "$trx" | head -1 | tr -dc 0-9)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
if [ "$passed" -eq 0 ]; then
  echo "no test ran" >&2
  status=1
fi
echo "dotnet-tests: $passed passed, $failed failed"
exit "$status"
