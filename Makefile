# The two commands a new user runs: `make up` (start the platform) and `make test`.
.PHONY: up test test-postgres bootstrap bench lint

bootstrap:
	bash scripts/bootstrap.sh

up: bootstrap
	.venv/bin/gsf up

# The suite on the embedded SQLite, then (the second configuration) again on the real PostgreSQL:
# every test that opens a platform database, each on a fresh database of its own (tests/conftest.py).
test: bootstrap
	.venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
	GSF_TEST_DATABASE=postgresql .venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-postgres: bootstrap
	GSF_TEST_DATABASE=postgresql .venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: bootstrap
	.venv/bin/python -m bench.deploy_latency

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy .
