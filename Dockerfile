# Clause decision service: `docker build -t clause .` then
# `docker run -p 8080:8080 clause` (or `docker compose up` for PostgreSQL).
# Settings come from CLAUSE_* variables (engine/settings.py; README "Deploying").

# Build stage: durable-rules ships only an sdist, which needs a C compiler.
FROM python:3.12-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md CHANGELOG.md cli.py ./
COPY engine engine
COPY policies policies
COPY schemas schemas
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres]'

# Run stage: no compiler, a non-root user, the policies in a volume-friendly place.
FROM python:3.12-slim
RUN useradd --system --uid 10001 --create-home --home-dir /srv/clause clause
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels 'clause-engine[postgres]' && rm -rf /wheels
COPY --chown=clause:clause policies /srv/clause/policies
WORKDIR /srv/clause
USER clause
ENV CLAUSE_POLICIES=/srv/clause/policies
ENV PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status != 200)"]
# SIGTERM (docker stop): uvicorn stops accepting, finishes the requests in flight
# (up to 20 s), then the application closes the decision log.
CMD ["uvicorn", "--factory", "engine.service:app_from_env", "--host", "0.0.0.0", "--port", "8080", "--timeout-graceful-shutdown", "20", "--proxy-headers"]
