#!/usr/bin/env bash
# The main job: evaluate the bundled real model on the easy tier through Dagster, print the leaderboard.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec rs demo "$@"
