#!/usr/bin/env sh
# Installs the Node interop dependencies (socket.io-client, pinned by package-lock.json).
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
