#!/usr/bin/env bash
# Sets up a fresh machine if needed, then checks the code (lint, types, the import layers) and runs
# the whole test suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
FORETHOUGHT_REINSTALL=1 ./scripts/setup.sh
echo "== ruff check" >&2; ruff check .
echo "== mypy" >&2; mypy
echo "== lint-imports" >&2; lint-imports --no-cache
exec python3 -m pytest -q "$@"
