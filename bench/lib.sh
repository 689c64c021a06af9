# Shared by bench/run.sh and bench/memory.sh (sourced; expects ROOT, KEY, PORT and LOGS to be set).
# The targets: name -> server and extra environment of the server. A variant is one line.

# name        server   extra environment of the server
TARGETS_DEF="
gateway       gateway
gateway-http  gateway  WEBSOCKET_RAW_UPGRADE=false
gateway-base  gateway-base
node          node
ceiling       ceiling  CEILING_UPGRADE=raw
ceiling-http  ceiling  CEILING_UPGRADE=http
"
target_server() { printf '%s\n' "$TARGETS_DEF" | awk -v t="$1" '$1 == t { print $2 }'; }
target_env() { printf '%s\n' "$TARGETS_DEF" | awk -v t="$1" '$1 == t { for (i = 3; i <= NF; i++) printf "%s ", $i }'; }

SERVER_PID=0

start_server() { # target; sets SERVER_PID, PORT
  local t=$1
  local extra
  extra=$(target_env "$t")
  PORT=$((PORT + 1))
  # the load generator's thousands of client sockets take ephemeral ports: skip one that is in use
  while ss -Htan "( sport = :$PORT )" 2>/dev/null | grep -q .; do PORT=$((PORT + 1)); done
  # shellcheck disable=SC2086
  case "$(target_server "$t")" in
    gateway)
      rm -f "$LOGS"/gw.db*
      env SERVER_PORT=$PORT AUTHENTICATION_API_KEY=$KEY DATABASE_PATH=$LOGS/gw.db LOG_LEVEL=Warning \
        WEBSOCKET_MAX_CONNECTIONS=200000 $extra \
        dotnet src/Evolution.Events.Gateway/bin/Release/net10.0/Evolution.Events.Gateway.dll >"$LOGS/$t.log" 2>&1 &
      ;;
    gateway-base)
      # the A/B of a whole change: the gateway built from another commit (e.g. a worktree of the commit before it)
      if [ -z "${BASE_GATEWAY_DLL:-}" ] || [ ! -f "$BASE_GATEWAY_DLL" ]; then
        echo "   $t needs BASE_GATEWAY_DLL: the Release dll of a gateway built from the commit to compare with" >&2
        return 1
      fi
      rm -f "$LOGS"/gw.db*
      env SERVER_PORT=$PORT AUTHENTICATION_API_KEY=$KEY DATABASE_PATH=$LOGS/gw.db LOG_LEVEL=Warning \
        WEBSOCKET_MAX_CONNECTIONS=200000 $extra \
        dotnet "$BASE_GATEWAY_DLL" >"$LOGS/$t.log" 2>&1 &
      ;;
    node)
      env SERVER_PORT=$PORT AUTHENTICATION_API_KEY=$KEY $extra node bench/node-peer/server.js >"$LOGS/$t.log" 2>&1 &
      ;;
    ceiling)
      env SERVER_PORT=$PORT $extra dotnet bench/Evolution.Events.Ceiling/bin/Release/net10.0/Evolution.Events.Ceiling.dll >"$LOGS/$t.log" 2>&1 &
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
