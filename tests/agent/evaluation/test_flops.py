"""Estimated inference FLOPs per task (agent/evaluation/flops.py) on hand-made traces: per role, cached
prompt tokens apart, and unknown (None, never a guess) for any model outside the catalogue."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.evaluation.flops import add_flops, eval_run_dirs, parameters_of, task_flops
from agent.llm.catalogue import CATALOGUE

N_135M = CATALOGUE["smollm2-135m"].parameters
N_1_5B = CATALOGUE["qwen2.5-coder-1.5b"].parameters


def call(role: str, model: str, prompt: int, cached: int, completion: int) -> dict[str, Any]:
    return {"type": "llm_call", "role": role, "model": model,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": cached,
                      "total_tokens": prompt + completion}}


def write_trace(task_dir: Path, models: dict[str, str], calls: list[dict[str, Any]]) -> Path:
    task_dir.mkdir(parents=True, exist_ok=True)
    events = [{"type": "task", "models": {role: {"model": spec} for role, spec in models.items()}},
              {"type": "start", "goal": "g"}, *calls, {"type": "end"}]
    path = task_dir / "trace.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


def test_flops_are_two_n_per_computed_token_per_role_with_cached_prompt_tokens_apart(tmp_path):
    trace = write_trace(tmp_path / "t", {"policy": "local:qwen2.5-coder-1.5b", "world_model": "local:smollm2-135m",
                                         "verifier": "local:smollm2-135m"}, [
        call("policy", "qwen2.5-coder-1.5b", prompt=1000, cached=600, completion=100),
        call("policy", "qwen2.5-coder-1.5b", prompt=1200, cached=1000, completion=50),
        call("world_model", "smollm2-135m", prompt=800, cached=0, completion=200),
        call("verifier", "smollm2-135m", prompt=900, cached=900, completion=10),
    ])
    flops = task_flops(trace)
    assert flops is not None
    policy, world_model, verifier = (flops.by_role[r] for r in ("policy", "world_model", "verifier"))
    # (1000 - 600 + 100) + (1200 - 1000 + 50) = 750 tokens computed by the 1.5B model
    assert (policy.computed_tokens, policy.cached_tokens, policy.parameters) == (750, 1600, N_1_5B)
    assert policy.flops == 2 * N_1_5B * 750
    assert world_model.flops == 2 * N_135M * 1000
    assert verifier.flops == 2 * N_135M * 10  # a fully cached prompt costs only its answer
    assert flops.flops == 2 * N_1_5B * 750 + 2 * N_135M * 1010
    assert flops.cached_tokens == 2500
    assert flops.models() == {"policy": "qwen2.5-coder-1.5b", "world_model": "smollm2-135m",
                              "verifier": "smollm2-135m"}


def test_a_model_outside_the_catalogue_has_unknown_flops_and_so_has_its_task(tmp_path):
    trace = write_trace(tmp_path / "t", {"policy": "local:smollm2-135m", "world_model": "openai:gpt-4o",
                                         "verifier": "gguf:/models/qwen2.5-coder-1.5b.gguf"}, [
        call("policy", "smollm2-135m", 100, 0, 10),
        call("world_model", "gpt-4o", 100, 50, 10),
        call("verifier", "qwen2.5-coder-1.5b", 100, 0, 10),  # a GGUF file's stem: not vouched for
    ])
    flops = task_flops(trace)
    assert flops is not None
    assert flops.by_role["policy"].flops == 2 * N_135M * 110
    assert flops.by_role["world_model"].flops is None and flops.by_role["world_model"].model == "openai:gpt-4o"
    assert flops.by_role["verifier"].flops is None
    assert flops.flops is None  # never a partial sum passed off as the task's
    assert flops.cached_tokens == 50


def test_parameters_come_from_the_catalogue_for_local_specs_only():
    assert parameters_of("local", "smollm2-135m") == N_135M  # the run default, named by the call
    assert parameters_of(None, "qwen2.5-coder-1.5b") == N_1_5B  # nothing configured: the local default
    assert parameters_of("local:smollm2-135m-instruct", "smollm2-135m-instruct") == N_135M  # an older name
    assert parameters_of("local:my-finetune", "my-finetune") is None  # cached, but not in the catalogue
    assert parameters_of("openai:smollm2-135m", "smollm2-135m") is None
    assert parameters_of("scripted:x.json", "smollm2-135m") is None


def test_a_role_answered_by_two_models_is_counted_per_model(tmp_path):
    trace = write_trace(tmp_path / "t", {}, [call("policy", "smollm2-135m", 10, 0, 0),
                                              call("policy", "qwen2.5-coder-1.5b", 10, 0, 0)])
    flops = task_flops(trace)
    assert flops is not None and sorted(flops.by_role) == ["policy:qwen2.5-coder-1.5b", "policy:smollm2-135m"]
    assert flops.flops == 2 * 10 * (N_135M + N_1_5B)


def write_run(run_dir: Path, tasks: dict[str, tuple[str, int] | None]) -> None:
    """An eval run of strategy 'reactive': per task, (policy model spec, tokens computed) or None for
    a task whose trace is missing."""
    lines = []
    for task_id, spec in tasks.items():
        lines.append(json.dumps({"task_id": task_id, "strategy": "reactive", "status": "success"}))
        if spec is not None:
            model, tokens = spec
            write_trace(run_dir / "reactive" / task_id, {"policy": model},
                        [call("policy", model.split(":", 1)[1], tokens + 5, 5, 0)])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_add_flops_gives_each_strategy_its_mean_and_none_when_any_task_is_unknown(tmp_path):
    write_run(tmp_path / "known", {"a": ("local:smollm2-135m", 100), "b": ("local:smollm2-135m", 300)})
    summary: dict[str, Any] = {"strategies": {"reactive": {}}}
    add_flops(summary, [tmp_path / "known"])
    assert summary["strategies"]["reactive"] == {"mean_flops": 2 * N_135M * 200, "mean_cached_tokens": 5}

    write_run(tmp_path / "mixed", {"a": ("local:smollm2-135m", 100), "b": ("openai:gpt-4o", 300)})
    add_flops(summary, [tmp_path / "mixed"])
    assert summary["strategies"]["reactive"]["mean_flops"] is None

    write_run(tmp_path / "lost", {"a": ("local:smollm2-135m", 100), "b": None})
    add_flops(summary, [tmp_path / "lost"])
    assert summary["strategies"]["reactive"] == {"mean_flops": None, "mean_cached_tokens": None}


def test_eval_run_dirs_finds_a_run_or_the_runs_of_a_frontier_bench(tmp_path):
    write_run(tmp_path / "bench" / "miniwob", {"a": ("local:smollm2-135m", 1)})
    write_run(tmp_path / "bench" / "local", {"b": ("local:smollm2-135m", 1)})
    assert eval_run_dirs(tmp_path / "bench" / "local") == [tmp_path / "bench" / "local"]
    assert eval_run_dirs(tmp_path / "bench") == [tmp_path / "bench" / "local", tmp_path / "bench" / "miniwob"]
    assert eval_run_dirs(tmp_path / "nowhere") == []
