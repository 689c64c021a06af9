#!/usr/bin/env bash
# The shipped program, run as an operator runs it. `dotnet publish -c Release` of the gateway (the Dockerfile's
# publish step, without a Docker engine) into a temporary folder, then the published dll is started with
# environment variables only, and checked:
#   - the production runtime settings are in the published runtimeconfig (tiered compilation off);
#   - a bad variable: exit code 2 and one line naming it on stderr, nothing served;
#   - no AUTHENTICATION_API_KEY: the start-up block prints a generated key, and that key opens the REST API;
#   - SERVER_PORT is the port it listens on; /health/live and /health/ready answer 200;
#   - the embedded client bundles are served (/socket.io.min.js, /socket.io/socket.io.js) and the dashboard page;
#   - with ADMIN_UI_ENABLED=true, the Admin UI's page, assets and local fonts at /admin-ui/;
#   - the `healthcheck` verb (the Docker HEALTHCHECK) exits 0 against the live server and non-zero against a dead one;
#   - `demo` produces events (the ingested-events counter grows);
#   - SIGTERM stops it with exit code 0.
# Ends with "check-publish: ok" or the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT
fail() { echo "check-publish: FAILED: $*" >&2; exit 1; }

dotnet publish src/Evolution.Events.Gateway/Evolution.Events.Gateway.csproj -c Release -o "$out/app" -p:UseAppHost=false --nologo -v quiet
dll="$out/app/Evolution.Events.Gateway.dll"
test -f "$dll" || fail "Evolution.Events.Gateway.dll missing"
grep -q '"System.Runtime.TieredCompilation": false' "$out/app/Evolution.Events.Gateway.runtimeconfig.json" \
  || fail "tiered compilation is not off in the published runtimeconfig.json"
echo "check-publish: dotnet publish -c Release succeeded ($(du -sh "$out/app" | cut -f1))"

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}
# the operator's environment only: nothing of the caller's gateway variables leaks in
# (an array, not a function: a function started with & is a subshell, and its pid is not the gateway's)
run=(env -i PATH="$PATH" HOME="$out" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1)
wait_http() { # url, expected status, seconds
  for _ in $(seq 1 $(($3 * 10))); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

# 1. a bad value: one line naming the variable, exit 2
set +e
"${run[@]}" WEBSOCKET_MAX_PAYLOAD=lots SERVER_PORT="$(free_port)" DATABASE_PATH="$out/bad.db" dotnet "$dll" >"$out/bad.out" 2>"$out/bad.err"
code=$?
set -e
[ "$code" -eq 2 ] || fail "a bad WEBSOCKET_MAX_PAYLOAD exited $code, not 2"
[ "$(wc -l <"$out/bad.err")" -eq 1 ] || fail "a bad value printed $(wc -l <"$out/bad.err") lines on stderr, not one: $(cat "$out/bad.err")"
grep -q "WEBSOCKET_MAX_PAYLOAD" "$out/bad.err" || fail "the error line does not name the variable: $(cat "$out/bad.err")"
echo "check-publish: a bad variable exits 2 with one line: $(cat "$out/bad.err")"

# 2. the plain run, on SERVER_PORT, with a generated key
port=$(free_port)
"${run[@]}" SERVER_PORT="$port" DATABASE_PATH="$out/gateway.db" ADMIN_UI_ENABLED=true dotnet "$dll" >"$out/serve.out" 2>"$out/serve.err" &
serve=$!; pids+=("$serve")
wait_http "http://127.0.0.1:$port/health/live" 200 60 || fail "no /health/live on SERVER_PORT $port: $(tail -5 "$out/serve.err")"
wait_http "http://127.0.0.1:$port/health/ready" 200 30 || fail "/health/ready is not 200"
for _ in $(seq 1 50); do grep -q "global key" "$out/serve.out" && break; sleep 0.1; done
key=$(grep "global key" "$out/serve.out" | awk '{print $3}')
grep "global key" "$out/serve.out" | grep -q GENERATED || fail "the start-up block does not say the key was generated"
[ -n "$key" ] || fail "no generated key in the start-up block"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "apikey: $key" "http://127.0.0.1:$port/instance/fetchInstances")" = 200 ] \
  || fail "the printed key does not open the REST API"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "apikey: wrong" "http://127.0.0.1:$port/instance/fetchInstances")" = 401 ] \
  || fail "a wrong key is not refused"
for path in /socket.io.min.js /socket.io/socket.io.js /socket.io/socket.io.min.js / /admin-ui/ \
  /admin-ui/vendor/mdi/css/materialdesignicons.min.css /admin-ui/vendor/roboto/400.css \
  /admin-ui/vendor/roboto/files/roboto-latin-400-normal.woff2; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path")" = 200 ] || fail "$path is not served by the published program"
done
for asset in $(curl -s "http://127.0.0.1:$port/admin-ui/" | grep -oE '(href|src)="[^"]+"' | cut -d'"' -f2); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/admin-ui/$asset")" = 200 ] || fail "/admin-ui/$asset is not served by the published program"
done
echo "check-publish: serves on SERVER_PORT $port; generated key printed and accepted; health, dashboard, client bundles and Admin UI served"

# 3. the healthcheck verb, against the live server and a dead port
"${run[@]}" SERVER_PORT="$port" dotnet "$dll" healthcheck >/dev/null 2>&1 || fail "healthcheck exited non-zero against the live server"
set +e
"${run[@]}" SERVER_PORT="$(free_port)" dotnet "$dll" healthcheck >/dev/null 2>&1
dead=$?
set -e
[ "$dead" -ne 0 ] || fail "healthcheck exited 0 against a dead port"
echo "check-publish: healthcheck exits 0 live, $dead dead"

# 4. SIGTERM: a clean stop, exit 0
kill -TERM "$serve"
set +e
wait "$serve"
code=$?
set -e
[ "$code" -eq 0 ] || fail "SIGTERM ended the gateway with exit code $code"
echo "check-publish: SIGTERM exits 0"

# 5. demo: events flow through the real ingestion path
port=$(free_port)
"${run[@]}" SERVER_PORT="$port" DATABASE_PATH="$out/demo.db" AUTHENTICATION_API_KEY=demo-key dotnet "$dll" demo >"$out/demo.out" 2>"$out/demo.err" &
demo=$!; pids+=("$demo")
wait_http "http://127.0.0.1:$port/health/ready" 200 60 || fail "demo: not ready"
ingested() { curl -s -H "apikey: demo-key" "http://127.0.0.1:$port/metrics" | awk '/^evolution_events_ingested_total/ {s += $2} END {print s + 0}'; }
grows=0
for _ in $(seq 1 100); do
  [ "$(ingested | cut -d. -f1)" -gt 2 ] && { grows=1; break; }
  sleep 0.1
done
[ "$grows" -eq 1 ] || fail "demo: no events ingested after 10 s"
grep -q "#instance=demo" "$out/demo.out" || fail "demo: the dashboard URL was not printed"
kill -TERM "$demo"; wait "$demo" || true
echo "check-publish: demo produces events ($(grep -c . "$out/demo.out") lines printed, ending with the dashboard URL)"
echo "check-publish: ok"
