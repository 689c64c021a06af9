#!/usr/bin/env bash
# Installs what the tests need (Debian packages when run as root, npm packages) and runs every test.
# The README's test command. Under CI=true a missing prerequisite fails the run instead of being skipped.
# Ends with "dotnet-tests: N passed, M failed, K skipped" (skipped tests are also listed by name).
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
# -m:1: one test project at a time. On 2 cores, projects run side by side starved each other's
# timing-bound tests (heartbeats, slow consumers); one at a time the whole run takes about 3 minutes.
dotnet test Evolution.Events.sln -c Release --no-build -nologo -m:1 \
  --logger "console;verbosity=normal" --logger "trx" --results-directory "$results" \
  --blame-hang-timeout 5m 2>&1 | tee "$results/dotnet-test.log" || status=$?

# Every test project must leave a trx (one that crashed or never started leaves none); the counts come
# from the trx counters. A run that exits non-zero, or a missing trx, fails the run and is counted as
# one failure on the summary line, so the line never says "0 failed" for a broken run.
projects=$(grep -l -E 'Microsoft\.NET\.Test\.Sdk|<IsTestProject>true' tests/*/*.csproj | xargs -n1 basename | sed 's/\.csproj$//')
passed=0; failed=0; skipped=0; aborted=0; missing=0
counter() { local v; v=$(grep -o "<Counters [^>]*>" "$1" | grep -oE " $2=\"[0-9]+\"" | tr -dc 0-9 || true); echo "${v:-0}"; }
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  passed=$((passed + $(counter "$trx" passed)))
  failed=$((failed + $(counter "$trx" failed) + $(counter "$trx" error) + $(counter "$trx" timeout)))
  skipped=$((skipped + $(counter "$trx" notExecuted) + $(counter "$trx" inconclusive) + $(counter "$trx" notRunnable)))
  aborted=$((aborted + $(counter "$trx" aborted) + $(counter "$trx" disconnected)))
  outcome=$(grep -oE '<ResultSummary outcome="[A-Za-z]+"' "$trx" | grep -oE '"[A-Za-z]+"' | tr -d '"')
  if [ "$outcome" != "Completed" ] && [ "$outcome" != "Failed" ]; then
    echo "dotnet-tests: $(basename "$trx"): run outcome ${outcome:-unknown}" >&2
    aborted=$((aborted + 1))
  fi
  grep -oE '<UnitTestResult [^>]*outcome="NotExecuted"[^>]*>' "$trx" | grep -oE 'testName="[^"]*"' | sed 's/^testName=/  skipped: /' || true
done
# The failed tests by name, with the first line of their message, here at the end where a log excerpt
# (the tail of a CI run) still shows them.
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  # one record per test result; the message is the first line inside <Message>
  awk 'BEGIN { RS = "<UnitTestResult " } NR > 1 {
         head = $0; sub(/>.*/, "", head); if (head !~ /outcome="(Failed|Error|Timeout|Aborted)"/) next
         name = head; sub(/.*testName="/, "", name); sub(/".*/, "", name)
         msg = ""; if (match($0, /<Message>[^\n<]*/)) msg = substr($0, RSTART + 9, RLENGTH - 9)
         printf "  failed: %s: %s\n", name, substr(msg, 1, 300) }' "$trx" || true
done
for project in $projects; do
  dll=$(echo "$project.dll" | tr '[:upper:]' '[:lower:]')
  if ! grep -qil "storage=\"[^\"]*/$dll\"" "$results"/*.trx 2>/dev/null; then
    echo "dotnet-tests: $project left no trx (crashed, or never ran)" >&2
    missing=$((missing + 1))
  fi
done
# Each test project must run at least the number of tests tests/minimum-test-counts.txt gives it, so a
# test class that silently stops being discovered (a lost attribute, a filter) fails the run.
below=0
while read -r project minimum; do
  case "$project" in ''|'#'*) continue ;; esac
  dll=$(echo "$project.dll" | tr '[:upper:]' '[:lower:]')
  trx=$(grep -il "storage=\"[^\"]*/$dll\"" "$results"/*.trx 2>/dev/null | head -1 || true)
  ran=0; [ -n "$trx" ] && ran=$(counter "$trx" passed)
  if [ "$ran" -lt "$minimum" ]; then
    echo "dotnet-tests: $project passed $ran tests, fewer than its minimum $minimum (tests/minimum-test-counts.txt)" >&2
    below=$((below + 1))
  fi
done < tests/minimum-test-counts.txt
if [ "$below" -gt 0 ]; then status=1; missing=$((missing + below)); fi
echo "dotnet-tests: not executed (skipped) $skipped, aborted $aborted, projects without results $missing, dotnet test exit $status"
if [ "$missing" -gt 0 ] || [ "$aborted" -gt 0 ]; then
  status=1
fi
if [ "$passed" -eq 0 ]; then
  echo "no test ran" >&2
  status=1
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=$((missing + aborted)); [ "$failed" -gt 0 ] || failed=1 # a broken run is never "0 failed"
fi
echo "dotnet-tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"
