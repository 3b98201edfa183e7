"""`forethought show`: a trace as one self-contained HTML page (inline CSS; screenshots are the
steps/NNN.png files next to it), and an index page for a run directory of several tasks."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import jinja2

from traces.schema import TRACE_FILE, Trace, fingerprint_lines, read_trace

TEMPLATES = Path(__file__).parent / "templates"
REPORT_FILE = "report.html"
CHANGED_LINES = 12  # lines added/removed shown per step
PROMPT_CHARS = 20_000  # a prompt shown in the report is cut after this many characters
ROLES = ("policy", "world_model", "verifier")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def write_report(path: str | Path) -> Path:
    """Write report.html for a task directory, or for every task of a run directory plus an index
    there. Returns the page to open."""
    path = Path(path)
    if (path / TRACE_FILE).is_file():
        return write_task_report(read_trace(path))
    task_dirs = sorted(p.parent for p in path.glob(f"*/{TRACE_FILE}"))
    if not task_dirs:
        raise FileNotFoundError(f"no trace under {path}: pass a run directory (runs/<run-id>) or a task "
                                f"directory (runs/<run-id>/<task-id>) holding {TRACE_FILE}")
    traces = [read_trace(d) for d in task_dirs]
    for trace in traces:
        write_task_report(trace)
    rows = [_summary(t) | {"link": f"{t.dir.name}/{REPORT_FILE}"} for t in traces]
    totals = {key: sum(r[key] for r in rows) for key in ("steps", "tokens", "cost", "seconds")}
    page = _environment().get_template("index.html").render(run=path.resolve().name, rows=rows, totals=totals)
    out = path / REPORT_FILE
    out.write_text(page, encoding="utf-8")
    return out


def write_task_report(trace: Trace) -> Path:
    page = _environment().get_template("report.html").render(**task_context(trace))
    out = trace.dir / REPORT_FILE
    out.write_text(page, encoding="utf-8")
    return out


def _summary(trace: Trace) -> dict[str, Any]:
    end = trace.end or {}
    usage = end.get("usage") or _usage_from_calls(trace)
    return {
        "task_id": trace.task_id,
        "goal": trace.goal,
        "stop_reason": end.get("stop_reason", "interrupted (no end recorded)"),
        "answer": end.get("answer"),
        "reward": end.get("reward", 0.0),
        "steps": end.get("steps", len(trace.executed_steps())),
        "tokens": usage["total"]["total_tokens"],
        "cost": usage["total"]["cost_usd"],
        "seconds": end.get("seconds", 0.0),
        "error": end.get("error"),
        "stop_detail": end.get("stop_detail"),
    }


def _usage_from_calls(trace: Trace) -> dict[str, Any]:
    by_role = {role: _add_usage([c["usage"] for c in trace.calls if c["role"] == role]) for role in ROLES}
    return {"total": _add_usage([c["usage"] for c in trace.calls]), "by_role": by_role}


def _add_usage(usages: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "latency_s")
    return {key: sum(u.get(key, 0) for u in usages) for key in keys}


def task_context(trace: Trace) -> dict[str, Any]:
    """Everything report.html shows, as plain data."""
    usage = _usage_from_calls(trace)  # per role from the calls themselves: also right for an interrupted run
    roles = [{"role": role, "calls": sum(1 for c in trace.calls if c["role"] == role), **usage["by_role"][role]}
             for role in ROLES if any(c["role"] == role for c in trace.calls)]
    steps = [_step_context(trace, step) for step in trace.steps]
    last = trace.observations[-1] if trace.observations else None
    scored = [step["surprise"] for step in steps if step["surprise"] and step["surprise"]["scored"]]
    return {
        "summary": _summary(trace),
        "task": trace.task,
        "config": trace.task.get("config", {}),
        "models": trace.task.get("models", {}),
        "roles": roles,
        "totals": {"calls": len(trace.calls), **usage["total"]},
        "steps": steps,
        "fidelity": _fidelity_total(scored) if scored else None,
        "final": _observation_context(last) if last else None,
    }


def _observation_context(obs: dict[str, Any]) -> dict[str, Any]:
    return {"index": obs["index"], "url": obs["url"], "title": obs["title"], "screenshot": obs.get("screenshot"),
            "screenshot_error": obs.get("screenshot_error"), "error": obs.get("last_action_error")}


def _step_context(trace: Trace, step: dict[str, Any]) -> dict[str, Any]:
    scores = step.get("scores") or {}
    imagined = step.get("imagined") or {}
    candidates = []
    for action in step.get("candidates") or []:
        score = scores.get(action)
        candidates.append({
            "action": action,
            "reason": (step.get("reasons") or {}).get(action, ""),
            "imagined": imagined.get(action) or [],
            "score": score["value"] if score else None,
            "samples": score["samples"] if score else [],
            "verdicts": score["reasons"] if score else [],
            "chosen": action == step.get("choice"),
        })
    before = trace.observations[step["before"]] if step.get("before") is not None and step["before"] >= 0 else None
    after = trace.observations[step["after"]] if step.get("after") is not None else None
    added, removed = _changes(trace, step) if before and after else ([], [])
    calls = [_call_context(trace, c) for c in trace.calls if c.get("step") == step["step"]]
    return {
        "number": step["step"],
        "before": _observation_context(before) if before else None,
        "after": _observation_context(after) if after else None,
        "candidates": candidates,
        "rejected": step.get("rejected") or [],
        "refined_out": step.get("refined_out") or [],
        "choice": step.get("choice"),
        "execution_error": step.get("execution_error"),
        "surprise": _surprise_context(step.get("surprise")),
        "reward": step.get("reward", 0.0),
        "seconds": step.get("seconds", 0.0),
        "stop_reason": step.get("stop_reason"),
        "added": added,
        "removed": removed,
        "calls": calls,
    }


# The counts world_model/surprise.py records (traces import no world model: they are read as data).
_COUNTS = ("claims", "true_claims", "changes", "named_changes")


def _surprise_context(recorded: dict[str, Any] | None) -> dict[str, Any] | None:
    """A step's recorded surprise with every field the page shows; a trace written before precision
    and recall were scored has only the score and its lists (`scored` False)."""
    if not recorded:
        return None
    scored = all(key in recorded for key in _COUNTS)
    context = {"score": recorded.get("score", 0.0), "scored": scored, "predicted": recorded.get("predicted", True),
               "matched": recorded.get("matched") or [], "missed": recorded.get("missed") or [],
               "unnamed": recorded.get("unnamed") or []}
    if scored:
        context |= {key: recorded[key] for key in _COUNTS} | {
            "precision": recorded.get("precision"), "recall": recorded.get("recall"), "f1": recorded.get("f1", 0.0)}
    return context


def _fidelity_total(surprises: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision, recall and F1 of the counts added over the steps (as `forethought wm-eval` totals them)."""
    counts = {key: sum(s[key] for s in surprises) for key in _COUNTS}
    precision = counts["true_claims"] / counts["claims"] if counts["claims"] else None
    recall = counts["named_changes"] / counts["changes"] if counts["changes"] else None
    if precision is None or recall is None:  # nothing claimed, or nothing changed: the other side decides
        f1 = next((v for v in (precision, recall) if v is not None), 1.0)
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return counts | {"precision": precision, "recall": recall, "f1": f1, "steps": len(surprises),
                     "unpredicted": sum(not s["predicted"] for s in surprises)}


def _changes(trace: Trace, step: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Element lines that appeared and disappeared with the step's action."""
    old = fingerprint_lines(trace.observation(step["before"]))[3:]  # past title, tabs and error lines
    new = fingerprint_lines(trace.observation(step["after"]))[3:]
    added, removed = [], []
    for line in difflib.unified_diff(old, new, n=0, lineterm=""):
        if line.startswith("+") and not line.startswith("+++"):
            added.append(line[1:].strip())
        elif line.startswith("-") and not line.startswith("---"):
            removed.append(line[1:].strip())

    def clip(lines: list[str]) -> list[str]:
        if len(lines) <= CHANGED_LINES:
            return lines
        return lines[:CHANGED_LINES] + [f"… {len(lines) - CHANGED_LINES} more"]

    return clip(added), clip(removed)


def _call_context(trace: Trace, call: dict[str, Any]) -> dict[str, Any]:
    messages = trace.prompts.get(call["prompt_hash"], [])
    prompt = "\n\n".join(f"[{m.get('role')}]\n{m.get('content')}" for m in messages)
    if len(prompt) > PROMPT_CHARS:
        prompt = prompt[:PROMPT_CHARS] + f"\n… ({len(prompt) - PROMPT_CHARS} more characters)"
    usage = call.get("usage", {})
    return {"role": call["role"], "model": call.get("model", ""), "hash": call["prompt_hash"][:12],
            "answers": call["answers"], "prompt": prompt, "tokens": usage.get("total_tokens", 0),
            "latency": usage.get("latency_s", 0.0), "cost": usage.get("cost_usd", 0.0)}
