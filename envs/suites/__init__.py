"""Task suites: the local WebArena-style suite over our own sites, and running oracle solutions."""
from envs.suites.local import (
    TASKS_DIR,
    LocalSites,
    LocalTask,
    Oracle,
    load_local_suite,
    oracle_of,
    storage_state_path,
)
from envs.suites.oracle import OracleError, check_sequence, resolve_step, run_oracle

__all__ = [
    "TASKS_DIR",
    "LocalSites",
    "LocalTask",
    "Oracle",
    "OracleError",
    "check_sequence",
    "load_local_suite",
    "oracle_of",
    "resolve_step",
    "run_oracle",
    "storage_state_path",
]
