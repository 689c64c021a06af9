#!/usr/bin/env bash
# Installs the tests' prerequisites: Debian packages (chromium for the browser tests, docker-compose for
# the compose check, nginx to validate deploy/nginx.conf, redis-server for scale-out, rabbitmq-server for the
# RabbitMQ ingestion) when root, and the npm packages of each folder that
# has a package-lock.json (tests/interop: the Node clients, 4.0-4.8; tests/Evolution.Events.BrowserTests: what
# the seeds' pages load, React and esbuild). Under CI=true anything missing afterwards is an error.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
# the tests start private nodes with /usr/lib/rabbitmq/bin/rabbitmq-server (tests/Evolution.Events.Testing/RabbitMQServer.cs)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "== apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # the packages' own services (redis, rabbitmq, nginx on their default ports) are not started: the tests
    # start private instances on free ports (policy-rc.d 101 = "action forbidden", Debian's documented switch)
    policy_rc=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_rc=1
    fi
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    [ -n "$policy_rc" ] && rm -f /usr/sbin/policy-rc.d
  else
    echo "missing Debian packages (run as root to install): ${need_apt[*]}" >&2
  fi
fi

missing=()
for tool in node npm chromium docker-compose redis-server nginx; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || missing+=(rabbitmq-server)
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing prerequisites: ${missing[*]}" >&2
  [ "${CI:-}" = "true" ] && exit 1
fi

for dir in tests/interop tests/Evolution.Events.BrowserTests src/Evolution.Events.Gateway; do
  if [ -f "$dir/package-lock.json" ]; then
    echo "== npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done
