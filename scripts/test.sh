#!/usr/bin/env bash
# `make test`: the suite on the embedded SQLite and, at the same time, its PostgreSQL pass (every
# test that opens a platform database and is not parametrized over both, each on a fresh database
# of its own: tests/conftest.py). The two sessions share nothing they could race on: their servers
# bind sockets of their own (core/listen.py), their databases, queues, networks and nodes have
# unique names, and the PostgreSQL pass builds its game images on a base image of its own name, so
# a server deleted in one session never removes an image the other is about to start.
# The SQLite pass prints as it goes; the PostgreSQL pass's output follows it. Either failing fails.
set -uo pipefail
cd "$(dirname "$0")/.."

read -r -a extra <<< "${PYTEST_ARGS:-}"
args=(-q -p no:cacheprovider "${extra[@]}")
pg_log="$(mktemp -t gsf-test-postgresql.XXXXXX)"
GSF_TEST_DATABASE=postgresql GSF_BASE_IMAGE="gsf-node-base:20-pg" \
  .venv/bin/python -m pytest "${args[@]}" > "$pg_log" 2>&1 &
pg=$!
trap 'kill "$pg" 2>/dev/null; wait "$pg" 2>/dev/null; rm -f "$pg_log"; exit 130' INT TERM

began=$SECONDS
echo "== SQLite pass (the PostgreSQL pass runs alongside; its output follows) =="
.venv/bin/python -m pytest "${args[@]}"
sqlite_rc=$?
wait "$pg"
pg_rc=$?
echo
echo "== PostgreSQL pass (GSF_TEST_DATABASE=postgresql) =="
cat "$pg_log"
rm -f "$pg_log"
echo
echo "make test: SQLite pass exit $sqlite_rc, PostgreSQL pass exit $pg_rc; $((SECONDS - began)) s in all"
[ "$sqlite_rc" -eq 0 ] && [ "$pg_rc" -eq 0 ]
