#!/usr/bin/env bash
# Sets up a fresh machine if needed, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
FORETHOUGHT_REINSTALL=1 ./scripts/setup.sh
exec python3 -m pytest -q "$@"
