# The two commands a new user runs: `make up` (start the platform) and `make test`.
# `make up` installs only what running the platform needs; `make test` adds what the tests need
# (Python dev extras, Chromium, docker-compose): scripts/bootstrap.sh platform|dev|test.
.PHONY: up test test-postgres bootstrap bootstrap-dev bootstrap-test bench lint

bootstrap:
	bash scripts/bootstrap.sh platform

bootstrap-dev:
	bash scripts/bootstrap.sh dev

bootstrap-test:
	bash scripts/bootstrap.sh test

up: bootstrap
	.venv/bin/gsf up

# The suite on the embedded SQLite, then (the second configuration) again on the real PostgreSQL:
# every test that opens a platform database, each on a fresh database of its own (tests/conftest.py).
test: bootstrap-test
	.venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
	GSF_TEST_DATABASE=postgresql .venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-postgres: bootstrap-test
	GSF_TEST_DATABASE=postgresql .venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: bootstrap-dev
	.venv/bin/python -m bench.deploy_latency

lint: bootstrap-dev
	.venv/bin/ruff check .
	.venv/bin/mypy .
	.venv/bin/lint-imports
