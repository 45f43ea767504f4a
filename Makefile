# The two commands a new user runs: `make up` (start the platform) and `make test`.
.PHONY: up test bootstrap bench lint

bootstrap:
	bash scripts/bootstrap.sh

up: bootstrap
	.venv/bin/gsf up

test: bootstrap
	.venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: bootstrap
	.venv/bin/python -m bench.deploy_latency

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/mypy .
