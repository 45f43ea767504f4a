#!/usr/bin/env bash
# Install everything gsf needs on this machine, idempotently: venv, Python deps,
# the runtime's npm deps, a Docker engine, and the offline game-server base image.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "gsf: Python 3.11 or newer is required (found $("$PY" --version 2>&1))." >&2
  exit 1
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "gsf: Node.js 20 and npm are required to build the game-server runtime (apt-get install nodejs npm)." >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "gsf: creating virtualenv .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.gsf-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "gsf: installing Python dependencies"
  .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/pip install -q -e ".[dev]"
  touch "$stamp"
fi

rt=gameserver/runtime
if [ ! -d "$rt/node_modules" ] || [ "$rt/package-lock.json" -nt "$rt/node_modules/.package-lock.json" ]; then
  echo "gsf: installing the game runtime's npm dependencies"
  (cd "$rt" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
fi

bash scripts/ensure-docker.sh
bash scripts/ensure-chromium.sh || echo "gsf: going on without Chromium; only the web-console tests need it" >&2
.venv/bin/python -m gameserver.image ensure-base
# docker-compose validates docker-compose.yml in the tests (Debian's docker-compose 1.29).
if ! command -v docker-compose >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1 || \
    echo "gsf: could not install docker-compose (only the compose-file test needs it)" >&2
fi
