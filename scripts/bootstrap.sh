#!/usr/bin/env bash
# Install what gsf needs on this machine, idempotently, in three nested parts:
#
#   bootstrap.sh platform  what running the platform needs (`make up`): the venv with gsf and its
#                          dependencies, the runtime's npm deps, a Docker engine, the offline
#                          game-server base image;
#   bootstrap.sh dev       the platform, plus the Python dev extras (pytest, ruff, mypy, playwright,
#                          ...: `make lint`, `make bench`);
#   bootstrap.sh test      dev, plus what only the tests need (`make test`): Debian's Chromium for
#                          the web-console tests, docker-compose for the compose-file test.
set -euo pipefail
cd "$(dirname "$0")/.."

part=${1:-platform}
case "$part" in
  platform | dev | test) ;;
  *) echo "usage: $0 [platform|dev|test]" >&2; exit 2 ;;
esac

platform() {
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
  # The stamps: .gsf-installed (gsf and its dependencies), .gsf-dev-installed (the dev extras too).
  # A fresh `make test` installs both in one pip run.
  spec=.
  if [ "$part" != platform ]; then spec=".[dev]"; fi
  if [ ! -f .venv/.gsf-installed ] || [ pyproject.toml -nt .venv/.gsf-installed ]; then
    echo "gsf: installing Python dependencies"
    .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
    .venv/bin/pip install -q -e "$spec"
    touch .venv/.gsf-installed
    if [ "$spec" != . ]; then touch .venv/.gsf-dev-installed; fi
  fi

  rt=gameserver/runtime
  if [ ! -d "$rt/node_modules" ] || [ "$rt/package-lock.json" -nt "$rt/node_modules/.package-lock.json" ]; then
    echo "gsf: installing the game runtime's npm dependencies"
    (cd "$rt" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
  fi

  # esbuild for game projects (TypeScript, bundles with source maps): gameserver/project.py.
  bt=gameserver/tooling
  if [ ! -d "$bt/node_modules/esbuild" ] || [ "$bt/package-lock.json" -nt "$bt/node_modules/.package-lock.json" ]; then
    echo "gsf: installing the project build tooling (esbuild)"
    (cd "$bt" && npm ci --no-audit --no-fund --loglevel=error)
  fi

  # The client SDK (clients/js): its pinned build tools (tsc) from the lockfile, then its build; the
  # console's play page imports it from /sdk/ (dist/ is not committed).
  js=clients/js
  if [ -f "$js/package-lock.json" ]; then
    if [ ! -d "$js/node_modules" ] || [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
      echo "gsf: installing the JavaScript client SDK's npm dependencies"
      (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
    fi
    if [ ! -f "$js/dist/index.js" ] || [ -n "$(find "$js/src" "$js/tsconfig.json" "$js/package-lock.json" -newer "$js/dist/index.js")" ]; then
      echo "gsf: building the JavaScript client SDK (clients/js)"
      (cd "$js" && npm run --silent build)
    fi
  fi

  bash scripts/ensure-docker.sh
  .venv/bin/python -m gameserver.image ensure-base
}

dev() {
  if [ ! -f .venv/.gsf-dev-installed ] || [ pyproject.toml -nt .venv/.gsf-dev-installed ]; then
    echo "gsf: installing the Python dev extras (tests, lint)"
    .venv/bin/pip install -q -e ".[dev]"
    touch .venv/.gsf-dev-installed
  fi
}

test_tools() {
  bash scripts/ensure-chromium.sh || echo "gsf: going on without Chromium; only the web-console tests need it" >&2
  # The client SDKs (tests/clients): the Python one into the venv; the TypeScript one's pinned
  # devDependencies (tsc, ws) from its lockfile, then its build (dist/ is not committed).
  if [ -f clients/python/pyproject.toml ] && [ clients/python/pyproject.toml -nt .venv/.gsf-client-installed ]; then
    echo "gsf: installing the Python client SDK (clients/python)"
    .venv/bin/pip install -q -e clients/python
    touch .venv/.gsf-client-installed
  fi
  # The TypeScript sample project's npm dependency, cached for the local registry the project
  # tests serve (tests/projects/registry.py): the tests never reach the internet themselves.
  if [ -d examples/projects ]; then
    npm cache add seedrandom@3.0.5 --loglevel=error  # a no-op when it is cached already
  fi
  # docker-compose validates docker-compose.yml in the tests (Debian's docker-compose 1.29).
  if ! command -v docker-compose >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null 2>&1 || \
      echo "gsf: could not install docker-compose (only the compose-file test needs it)" >&2
  fi
}

platform
if [ "$part" = dev ] || [ "$part" = test ]; then
  dev
fi
if [ "$part" = test ]; then
  test_tools
fi
