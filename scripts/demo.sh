#!/usr/bin/env bash
# The main job: evaluate the bundled real model and the known-truth calibration endpoint through Dagster, print the
# leaderboard and what the run found.
set -euo pipefail
cd "$(dirname "$0")/.."
RS_SETUP=demo source scripts/setup.sh  # only what the demo needs (the tests' Debian packages and tools are left out)
exec rs demo "$@"
