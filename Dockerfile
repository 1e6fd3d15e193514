# syntax=docker/dockerfile:1
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_FROZEN=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

# System tools used by media features (TTS and audio/video probing).
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng ffmpeg \
    && rm -rf /var/lib/apt/lists/*

ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

# Unprivileged runtime user; /app is writable by it (virtualenv, local media),
# the source files copied below stay root-owned and read-only.
RUN groupadd --system --gid 10001 mediahub \
    && useradd --system --uid 10001 --gid mediahub --home-dir /app \
       --no-create-home --shell /usr/sbin/nologin mediahub \
    && mkdir -p /app \
    && chown mediahub:mediahub /app

WORKDIR /app
USER 10001:10001

# Dependencies first, for layer caching.
COPY pyproject.toml uv.lock* ./
RUN uv sync --no-dev --frozen --no-install-project

# Application code (alembic.ini only if the repository has one).
COPY README.md alembic.ini* ./
COPY gateway/ gateway/
COPY tenants/ tenants/
COPY plugins/ plugins/
COPY billing/ billing/
COPY migrations/ migrations/
RUN uv sync --no-dev --frozen

EXPOSE 8000

CMD ["uv", "run", "--no-dev", "mediahub", "serve", "--host", "0.0.0.0", "--port", "8000"]
