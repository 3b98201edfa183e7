"""WebArena tasks: configs (original and WebArena-Verified formats), evaluators, the Task class."""
from envs.webarena.checks import Evaluation
from envs.webarena.config import (
    EvalConfig,
    ProgramHtmlTarget,
    TaskConfig,
    TaskConfigError,
    UnresolvedPlaceholderError,
    parse_task,
)
from envs.webarena.evaluators import Judge, evaluate
from envs.webarena.loading import load_tasks, load_webarena_official
from envs.webarena.task import WebArenaTask
from envs.webarena.verified import agent_response, infer_task_type, write_agent_response

__all__ = [
    "EvalConfig", "Evaluation", "Judge", "ProgramHtmlTarget", "TaskConfig", "TaskConfigError",
    "UnresolvedPlaceholderError", "WebArenaTask", "agent_response", "evaluate", "infer_task_type",
    "load_tasks", "load_webarena_official", "parse_task", "write_agent_response",
]
