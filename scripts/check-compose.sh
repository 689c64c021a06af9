#!/usr/bin/env bash
# Checks that docker-compose.yml parses, for the default set of services and for each profile (no Docker engine
# needed), and that deploy/nginx.conf is valid (nginx -t). Installs nothing.
# Under CI=true a missing docker-compose or nginx fails; elsewhere the check is skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-compose >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "check-compose: docker-compose is not installed (apt-get install docker-compose)" >&2
    exit 1
  fi
  echo "check-compose: docker-compose is not installed; skipped (CI=true makes this an error)" >&2
  exit 0
fi

# The compose file requires the global key; give it a placeholder so that parsing does not stop on it.
export AUTHENTICATION_API_KEY="${AUTHENTICATION_API_KEY:-check-compose-placeholder}"
docker-compose -f docker-compose.yml config -q
echo "check-compose: docker-compose.yml is valid (default services)"
for profile in cluster rabbitmq; do
  services=$(docker-compose -f docker-compose.yml --profile "$profile" config --services | sort | tr '\n' ' ')
  echo "check-compose: profile $profile is valid: $services"
  if [ "$profile" = cluster ]; then
    for s in gateway gateway-2 nginx redis; do
      case " $services" in
        *" $s "*) ;;
        *) echo "check-compose: profile cluster lacks the service $s" >&2; exit 1 ;;
      esac
    done
  fi
done

if command -v nginx >/dev/null 2>&1; then
  # the upstream host names exist on the compose network only: check a copy that points at the loopback
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  sed -e 's/server gateway:8080/server 127.0.0.1:8080/' -e 's/server gateway-2:8080/server 127.0.0.2:8080/' \
    deploy/nginx.conf > "$dir/nginx.conf"
  nginx -t -q -c "$dir/nginx.conf" -g "pid $dir/nginx.pid; error_log $dir/error.log;" 2>"$dir/out" || {
    cat "$dir/out" >&2
    echo "check-compose: deploy/nginx.conf is not valid" >&2
    exit 1
  }
  echo "check-compose: deploy/nginx.conf is valid"
else
  if [ "${CI:-}" = "true" ]; then
    echo "check-compose: nginx is not installed (apt-get install nginx); deploy/nginx.conf cannot be checked" >&2
    exit 1
  fi
  echo "check-compose: nginx is not installed; deploy/nginx.conf not checked (CI=true makes this an error)" >&2
fi
