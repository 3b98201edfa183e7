#!/usr/bin/env bash
# Sets up a fresh machine if needed, then runs the main job on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "== forethought observe: the bundled demo page =="
forethought observe bundled:demo
echo
echo "== forethought observe: a MiniWoB++ task (click-checkboxes, seed 1) =="
forethought observe miniwob:click-checkboxes --seed 1
