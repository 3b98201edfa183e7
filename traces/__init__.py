"""The memory of runs: trace schema, recorder, replayer and report."""
