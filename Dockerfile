# One image for every platform process: api, matchmaker, control-worker, agent (see docker-compose.yml).
#
# Two ways to build it:
# - with a registry: `docker build .` (the last stage, `registry`, from python:3.11-slim + pip + npm);
# - without one: `gsf image build-platform` imports this host's Python, the installed runtime
#   dependencies and node as `gsf-platform-base:<hash>` (cli/platform_image.py), then builds the
#   `offline` stage on it with no network at all.
# The classic builder builds every stage before the target, so the offline stage comes first and
# defaults to the registry base (a harmless copy when building `registry`).
ARG PYTHON_IMAGE=python:3.11-slim
ARG PLATFORM_BASE=${PYTHON_IMAGE}

FROM ${PLATFORM_BASE} AS offline
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY core core
COPY analysis analysis
COPY workflows workflows
COPY activities activities
COPY agent_worker agent_worker
COPY control_worker control_worker
COPY matchmaker matchmaker
COPY cli cli
COPY gameserver gameserver
COPY fakes fakes
COPY config config
# The console's client SDK, built on the host by scripts/bootstrap.sh (served at /sdk/).
COPY clients/js/dist clients/js/dist
USER 10001
ENV GSF_DATA_DIR=/data PYTHONUNBUFFERED=1
ENTRYPOINT ["gsf"]
CMD ["api"]

FROM ${PYTHON_IMAGE} AS registry
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY core core
COPY analysis analysis
COPY workflows workflows
COPY activities activities
COPY agent_worker agent_worker
COPY control_worker control_worker
COPY matchmaker matchmaker
COPY cli cli
COPY gameserver gameserver
COPY fakes fakes
COPY config config
COPY clients/js clients/js
RUN pip install --no-cache-dir . && (cd gameserver/runtime && npm ci --omit=dev --no-audit --no-fund) \
    && (cd clients/js && npm ci --no-audit --no-fund && npm run build && rm -rf node_modules)
RUN useradd --uid 10001 --create-home gsf
USER gsf
ENV GSF_DATA_DIR=/data PYTHONUNBUFFERED=1
ENTRYPOINT ["gsf"]
CMD ["api"]
