"""`forethought show`: a trace as one self-contained HTML page (inline CSS and script, every screenshot
embedded: traces/shots.py), which opens alone, moved or mailed without its steps/ folder."""
from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

from envs.actions import ActionError, parse_action
from envs.rendering import element_lines
from traces.html import environment
from traces.layout import REPORT_FILE, RESULT_FILE, is_eval_run, task_dirs, traced_dirs
from traces.schema import Trace, fingerprint_lines, read_trace
from traces.shots import ShotLoader
from traces.study import eval_size, write_index

CHANGED_LINES = 12  # lines added/removed shown per step
PROMPT_CHARS = 20_000  # a prompt (or an answer) shown in the report is cut after this many characters
FINAL_LINES = 400  # lines of the final page's element tree shown
ROLES = ("policy", "world_model", "verifier")
# A sentence of an error message said again by other rejected answers of the step is shown once.
_SENTENCE_END = re.compile(r"(?<=[.;?!])\s+(?=[A-Z])")
SHARED_NOTE_CHARS = 40  # shorter sentences are kept in each line (they say what is wrong with it)


def write_report(path: str | Path, summary: dict[str, Any] | None = None, frontier_svg: str | None = None) -> Path:
    """Write report.html for a task directory, or for every task of a run directory (`forethought run`'s
    or an eval's) plus the run's index there; a run of one task is that task. `summary` and
    `frontier_svg`: an eval's summary table and plot for the index (traces/study.py). Returns the
    page to open."""
    path = Path(path)
    eval_run = is_eval_run(path)
    dirs = traced_dirs(path) if eval_run else task_dirs(path)
    reports, pages = {}, []
    for task_dir in dirs:
        trace = read_trace(task_dir)
        reports[task_dir] = outcome(trace)
        pages.append(write_task_report(trace))
    if len(pages) == 1 and (not eval_run or eval_size(path) == 1):
        return pages[0]
    return write_index(path, reports, summary, frontier_svg)


def write_task_report(trace: Trace) -> Path:
    page = environment().get_template("report.html").render(**task_context(trace))
    out = trace.dir / REPORT_FILE
    out.write_text(page, encoding="utf-8")
    return out


def outcome(trace: Trace) -> dict[str, Any]:
    """The outcome of a run as its trace tells it."""
    end = trace.end or {}
    usage = end.get("usage") or _usage_from_calls(trace)
    return {
        "task_id": trace.task_id,
        "kind": trace.task["task"].get("kind"),
        "strategy": trace.task.get("config", {}).get("strategy", "?"),
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
    shots = ShotLoader(trace.dir)
    steps = [_step_context(trace, step, shots) for step in trace.steps]
    scored = [step["surprise"] for step in steps if step["surprise"] and step["surprise"]["scored"]]
    return {
        "summary": outcome(trace),
        "task": trace.task,
        "config": trace.task.get("config", {}),
        "models": trace.task.get("models", {}),
        "roles": roles,
        "totals": {"calls": len(trace.calls), **usage["total"]},
        "steps": steps,
        "fidelity": _fidelity_total(scored) if scored else None,
        "final": _final_context(trace, shots) if trace.observations else None,
        "verdict": _verdict(trace.dir),
    }


def _verdict(task_dir: Path) -> dict[str, Any] | None:
    """What the task's evaluator said (result.json of a run scored by one: an eval, `run --task`)."""
    try:
        result = json.loads((task_dir / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    evaluation = result.get("evaluation") if isinstance(result, dict) else None
    if not isinstance(evaluation, dict):
        return None
    return {"status": result.get("status"), "score": evaluation.get("score"),
            "explanation": evaluation.get("explanation") or ""}


def _observation_context(obs: dict[str, Any], shots: ShotLoader, acted_id: str | None = None) -> dict[str, Any]:
    return {"index": obs["index"], "url": obs["url"], "title": obs["title"], "tabs": obs.get("tabs") or [],
            "shot": shots.load(obs, acted_id), "screenshot": obs.get("screenshot"),
            "screenshot_error": obs.get("screenshot_error"), "error": obs.get("last_action_error")}


def _final_context(trace: Trace, shots: ShotLoader) -> dict[str, Any]:
    """The page the run ended on: its last screenshot and the element tree the agent last read."""
    last = trace.observations[-1]
    lines = element_lines(trace.observation(last["index"]).elements, max_name=300)
    more = len(lines) - FINAL_LINES
    return _observation_context(last, shots) | {
        "lines": lines[:FINAL_LINES] + ([f"… {more} more lines"] if more > 0 else [])}


def _acted_id(action: str | None) -> str | None:
    """The element the action was aimed at (the first one it names), if any."""
    try:
        ids = parse_action(action).element_ids() if action else []
    except ActionError:
        return None
    return ids[0] if ids else None


def _rejected_context(rejected: list[dict[str, Any]]) -> dict[str, Any]:
    """The step's unusable answers, each distinct one once with how often it came, and what their
    errors all say (a long sentence shared by several, like the list of known actions) said once."""
    sentences = [_SENTENCE_END.split(str(r.get("error", ""))) for r in rejected]
    counts: dict[str, int] = {}
    for parts in sentences:
        for part in set(parts):
            counts[part] = counts.get(part, 0) + 1
    shared = [part for part, n in counts.items() if n > 1 and len(part) >= SHARED_NOTE_CHARS]
    answers: dict[tuple[str, str], int] = {}
    for record, parts in zip(rejected, sentences):
        error = " ".join(part for part in parts if part not in shared)
        key = (str(record.get("answer", "")), error)
        answers[key] = answers.get(key, 0) + 1
    return {"answers": [{"answer": a, "error": e, "count": n} for (a, e), n in answers.items()],
            "notes": [part for part in dict.fromkeys(p for parts in sentences for p in parts) if part in shared]}


def _step_context(trace: Trace, step: dict[str, Any], shots: ShotLoader) -> dict[str, Any]:
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
    acted = _acted_id(step.get("choice"))
    return {
        "number": step["step"],
        "before": _observation_context(before, shots, acted) if before else None,
        "after": {"url": after["url"], "title": after["title"]} if after else None,
        "acted_id": acted,
        "candidates": candidates,
        "rejected": _rejected_context(step.get("rejected") or []),
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


def _readable(content: Any) -> str:
    """A message's content as text: a --vision prompt's parts in order, each picture by the file holding it."""
    if not isinstance(content, list):
        return str(content or "")
    return "".join(str(part.get("text", "")) if part.get("type") == "text"
                   else f"\n[picture: {part.get('image_url', {}).get('file', 'not recorded')}]\n"
                   for part in content if isinstance(part, dict))


def _call_context(trace: Trace, call: dict[str, Any]) -> dict[str, Any]:
    messages = trace.prompts.get(call["prompt_hash"], [])
    prompt = "\n\n".join(f"[{m.get('role')}]\n{_readable(m.get('content'))}" for m in messages)
    if len(prompt) > PROMPT_CHARS:
        prompt = prompt[:PROMPT_CHARS] + f"\n… ({len(prompt) - PROMPT_CHARS} more characters)"
    usage = call.get("usage", {})
    answers = [a if len(a) <= PROMPT_CHARS else a[:PROMPT_CHARS] + f"\n… ({len(a) - PROMPT_CHARS} more characters)"
               for a in map(str, call["answers"])]
    return {"role": call["role"], "model": call.get("model", ""), "hash": call["prompt_hash"][:12],
            "answers": answers, "prompt": prompt, "tokens": usage.get("total_tokens", 0),
            "latency": usage.get("latency_s", 0.0), "cost": usage.get("cost_usd", 0.0)}
