# One image for every platform process: api, matchmaker, control-worker, agent (see docker-compose.yml).
# Real deployments build it from a registry base; the game-server runtime image is built by the agent.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY core core
COPY workflows workflows
COPY activities activities
COPY agent_worker agent_worker
COPY matchmaker matchmaker
COPY cli cli
COPY gameserver gameserver
COPY config config
RUN pip install --no-cache-dir . && (cd gameserver/runtime && npm ci --omit=dev --no-audit --no-fund)
RUN useradd --uid 10001 --create-home gsf
USER gsf
ENV GSF_DATA_DIR=/data PYTHONUNBUFFERED=1
ENTRYPOINT ["gsf"]
CMD ["api"]
