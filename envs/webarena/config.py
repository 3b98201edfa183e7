"""WebArena task configs: loading, checking and resolving site placeholders.

Two formats load into one typed `TaskConfig`:
- WebArena's `test.raw.json` (one task object, a list of them, or a directory of `<id>.json` files);
- WebArena-Verified's (`start_urls`, `eval` as a list of evaluator objects). Its evaluators have no
  WebArena equivalent, so they are kept as raw objects (`verified_eval`).
Reading task files, and WebArena's official tasks, is envs/webarena/loading.py.

Site URLs appear in configs as placeholders (`__SHOPPING__`, …). They are replaced from an explicit
mapping (local sites pass their own URLs) or from env vars (`SHOPPING`, … or BrowserGym's `WA_*`);
a placeholder that stays unresolved is an error only when the task is run (`require_resolved`).
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

EVAL_TYPES = ("string_match", "url_match", "program_html")
ANSWER_KINDS = ("exact_match", "must_include", "fuzzy_match")
URL_NOTES = ("GOLD in PRED",)  # the only matching rule WebArena implements
START_URL_SEPARATOR = " |AND| "
OR_SEPARATOR = " |OR| "

# Placeholder -> env var names, first found wins (WebArena's name, then BrowserGym's).
SITE_ENV_VARS: dict[str, tuple[str, ...]] = {
    "__SHOPPING__": ("SHOPPING", "WA_SHOPPING"),
    "__SHOPPING_ADMIN__": ("SHOPPING_ADMIN", "WA_SHOPPING_ADMIN"),
    "__REDDIT__": ("REDDIT", "WA_REDDIT"),
    "__GITLAB__": ("GITLAB", "WA_GITLAB"),
    "__WIKIPEDIA__": ("WIKIPEDIA", "WA_WIKIPEDIA"),
    "__MAP__": ("MAP", "WA_MAP"),
    "__HOMEPAGE__": ("HOMEPAGE", "WA_HOMEPAGE"),
}
_PLACEHOLDER = re.compile(r"__(?:SHOPPING_ADMIN|SHOPPING|REDDIT|GITLAB|WIKIPEDIA|MAP|HOMEPAGE)__")


class TaskConfigError(ValueError):
    """A task config that cannot be run as written; the message names the task and the field."""


class UnresolvedPlaceholderError(TaskConfigError):
    """A site URL placeholder with no URL given for it."""


@dataclass(frozen=True)
class ProgramHtmlTarget:
    """One page check of `program_html`: which page, what to read from it, what it must contain."""

    url: str  # "last", "func:helper(...)" or a URL to open
    locator: str  # "" (whole page), "document.…" / "[...document.…" (JS), or "func:helper(...)"
    exact_match: str | None = None
    must_include: tuple[str, ...] | None = None  # each item may hold " |OR| " alternatives
    prep_actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalConfig:
    eval_types: tuple[str, ...]
    # In the config's own key order: WebArena's string_match walks them in that order.
    reference_answers: dict[str, Any] = field(default_factory=dict)
    reference_url: str = ""
    url_note: str = "GOLD in PRED"
    string_note: str = ""
    program_html: tuple[ProgramHtmlTarget, ...] = ()


@dataclass(frozen=True)
class TaskConfig:
    task_id: int | str
    intent: str
    start_urls: tuple[str, ...]
    sites: tuple[str, ...] = ()
    eval: EvalConfig | None = None  # None: a WebArena-Verified task known only by its own evaluators
    require_login: bool = False
    storage_state: str | None = None  # Playwright storage-state file to start the context with
    require_reset: bool = False
    geolocation: Any = None
    intent_template: str = ""
    intent_template_id: int | None = None
    instantiation_dict: dict[str, Any] = field(default_factory=dict)
    revision: int | None = None  # WebArena-Verified's task revision
    verified_eval: tuple[dict[str, Any], ...] = ()  # WebArena-Verified's evaluator objects, as written
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # before substitution
    source: str = ""  # file the task came from

    @property
    def start_url(self) -> str:
        """The start URL(s) in WebArena's form."""
        return START_URL_SEPARATOR.join(self.start_urls)

    @property
    def expected_verified_response(self) -> dict[str, Any] | None:
        """WebArena-Verified's expected agent response (task_type, status, retrieved_data), if known."""
        for evaluator in self.verified_eval:
            if evaluator.get("evaluator") == "AgentResponseEvaluator":
                return evaluator.get("expected")
        return None

    def unresolved_placeholders(self) -> list[str]:
        found = _PLACEHOLDER.findall(json.dumps(_runnable_part(self)))
        return sorted(set(found))

    def require_resolved(self) -> None:
        """Raise one clear error if a site URL placeholder is still in the task."""
        missing = self.unresolved_placeholders()
        if missing:
            wants = "; ".join(f"{p}: set ${SITE_ENV_VARS[p][0]} (or ${SITE_ENV_VARS[p][1]})" for p in missing)
            raise UnresolvedPlaceholderError(
                f"task {self.task_id}: no URL for site placeholder(s) {', '.join(missing)} — {wants} "
                "to the site's base URL, or pass site_urls when loading"
            )

    def with_site_urls(self, site_urls: Mapping[str, str] | None = None, use_env: bool = True) -> TaskConfig:
        """This task with its placeholders replaced (explicit URLs win over env vars)."""
        source = self.raw or None
        if source is None:
            raise TaskConfigError(f"task {self.task_id}: no raw config kept to resolve placeholders from")
        resolved = parse_task(source, site_urls=site_urls, use_env=use_env, source=self.source)
        if self.verified_eval and not resolved.verified_eval:
            mapping = site_url_mapping(site_urls, use_env)
            resolved = replace(
                resolved,
                verified_eval=tuple(_substitute(e, mapping) for e in self.verified_eval),
                revision=self.revision,
            )
        return resolved


def _runnable_part(config: TaskConfig) -> Any:
    # What is opened or compared at run time; intents and raw copies may mention placeholders harmlessly.
    return [config.start_urls, _eval_as_data(config.eval)]


def _eval_as_data(ev: EvalConfig | None) -> Any:
    if ev is None:
        return None
    targets = [(t.url, t.locator, t.exact_match, t.must_include) for t in ev.program_html]
    return [ev.reference_url, ev.reference_answers, targets]


def site_url_mapping(site_urls: Mapping[str, str] | None = None, use_env: bool = True) -> dict[str, str]:
    """Placeholder -> base URL. Keys of `site_urls` may be 'shopping', 'SHOPPING' or '__SHOPPING__'."""
    mapping: dict[str, str] = {}
    if use_env:
        for placeholder, names in SITE_ENV_VARS.items():
            for name in names:
                if os.environ.get(name):
                    mapping[placeholder] = os.environ[name]
                    break
    for key, url in (site_urls or {}).items():
        placeholder = f"__{key.strip('_').upper()}__"
        if placeholder not in SITE_ENV_VARS:
            known = ", ".join(p.strip("_").lower() for p in SITE_ENV_VARS)
            raise TaskConfigError(f"unknown site {key!r} in site_urls; known sites: {known}")
        mapping[placeholder] = url
    # WebArena's URLs carry no trailing slash: configs write "__GITLAB__/path".
    return {p: u.rstrip("/") for p, u in mapping.items()}


def _substitute(value: Any, mapping: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: mapping.get(m.group(0), m.group(0)), value)
    if isinstance(value, list):
        return [_substitute(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, mapping) for k, v in value.items()}
    return value


# ----------------------------------------------------------------------------------------------
# Parsing and checking one task


class _Checker:
    """Field checks that raise one error naming the task and the field."""

    def __init__(self, task_id: Any, source: str) -> None:
        self.task_id = task_id
        self.where = f" (in {source})" if source else ""

    def fail(self, field_name: str, wants: str, got: Any) -> TaskConfigError:
        return TaskConfigError(f"task {self.task_id}: {field_name} must be {wants}, got {_show(got)}{self.where}")

    def string(self, data: Mapping[str, Any], key: str, field_name: str, *, required: bool = True,
               non_empty: bool = False, default: str = "") -> str:
        if key not in data or data[key] is None:
            if required:
                raise self.fail(field_name, "a string", "nothing (the key is missing)" if key not in data else None)
            return default
        value = data[key]
        if not isinstance(value, str) or (non_empty and not value.strip()):
            raise self.fail(field_name, "a non-empty string" if non_empty else "a string", value)
        return value

    def boolean(self, data: Mapping[str, Any], key: str, field_name: str) -> bool:
        value = data.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.fail(field_name, "true or false", value)
        return value

    def strings(self, value: Any, field_name: str, *, non_empty: bool = False) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (non_empty and not value):
            raise self.fail(field_name, "a non-empty list of strings" if non_empty else "a list of strings", value)
        return tuple(value)


def _show(value: Any) -> str:
    if isinstance(value, str) and value.startswith("nothing"):
        return value
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_task(data: Any, *, site_urls: Mapping[str, str] | None = None, use_env: bool = True,
               source: str = "", index: int | None = None) -> TaskConfig:
    """Check one task object (either format) and build its TaskConfig, placeholders substituted."""
    if not isinstance(data, dict):
        where = f"task at index {index}" if index is not None else "task"
        raise TaskConfigError(f"{where}{f' in {source}' if source else ''}: must be a JSON object, got {_show(data)}")
    if "task_id" not in data:
        where = f"task at index {index}" if index is not None else "task"
        raise TaskConfigError(f"{where}{f' in {source}' if source else ''}: task_id is missing")
    task_id = data["task_id"]
    check = _Checker(task_id, source)
    if isinstance(task_id, bool) or not isinstance(task_id, (int, str)) or task_id == "":
        raise check.fail("task_id", "an integer or a non-empty string", task_id)

    resolved = _substitute(data, site_url_mapping(site_urls, use_env))
    if isinstance(resolved.get("eval"), list) or "start_urls" in resolved:
        return _parse_verified(resolved, data, check, source)
    return _parse_raw(resolved, data, check, source)


def _common_fields(data: dict[str, Any], check: _Checker) -> dict[str, Any]:
    sites = data.get("sites", [])
    template_id = data.get("intent_template_id")
    if template_id is not None and (isinstance(template_id, bool) or not isinstance(template_id, int)):
        raise check.fail("intent_template_id", "an integer", template_id)
    instantiation = data.get("instantiation_dict") or {}
    if not isinstance(instantiation, dict):
        raise check.fail("instantiation_dict", "an object", instantiation)
    return dict(
        task_id=data["task_id"],
        intent=check.string(data, "intent", "intent", non_empty=True),
        sites=check.strings(sites if sites is not None else [], "sites"),
        intent_template=check.string(data, "intent_template", "intent_template", required=False),
        intent_template_id=template_id,
        instantiation_dict=dict(instantiation),
    )


def _parse_raw(data: dict[str, Any], original: dict[str, Any], check: _Checker, source: str) -> TaskConfig:
    start_url = check.string(data, "start_url", "start_url", non_empty=True)
    start_urls = tuple(u.strip() for u in start_url.split(START_URL_SEPARATOR.strip()) if u.strip())
    storage_state = data.get("storage_state")
    if storage_state is not None and (not isinstance(storage_state, str) or not storage_state.strip()):
        raise check.fail("storage_state", "a path to a Playwright storage-state file, or null", storage_state)
    return TaskConfig(
        **_common_fields(data, check),
        start_urls=start_urls,
        eval=_parse_eval(data.get("eval"), check),
        require_login=check.boolean(data, "require_login", "require_login"),
        storage_state=storage_state,
        require_reset=check.boolean(data, "require_reset", "require_reset"),
        geolocation=data.get("geolocation"),
        raw=original,
        source=source,
    )


def _parse_eval(ev: Any, check: _Checker) -> EvalConfig:
    """What WebArena's evaluators can score is accepted; where they raise (a missing field an
    evaluator reads, a wrong type, an unknown eval type), the task is refused here, before it runs."""
    if not isinstance(ev, dict):
        raise check.fail("eval", "an object with eval_types", ev if ev is not None else "nothing (the key is missing)")
    eval_types = ev.get("eval_types")
    if not isinstance(eval_types, list) or not all(isinstance(t, str) for t in eval_types):
        raise check.fail("eval.eval_types", f"a list of {'/'.join(EVAL_TYPES)}", eval_types)
    if unknown := [t for t in eval_types if t not in EVAL_TYPES]:
        raise check.fail("eval.eval_types", f"a list of {'/'.join(EVAL_TYPES)} (WebArena knows no other)", unknown)

    answers = ev.get("reference_answers")
    if answers is None and "string_match" not in eval_types:
        answers = {}
    if not isinstance(answers, dict):
        wants = "an object (eval_types has string_match)" if "string_match" in eval_types else "an object or null"
        raise check.fail("eval.reference_answers", wants, answers)
    for kind, value in answers.items():  # other keys WebArena ignores, and so does string_match here
        name = f"eval.reference_answers.{kind}"
        if kind == "exact_match" and not isinstance(value, str):
            raise check.fail(name, "a string", value)
        if kind == "must_include":
            check.strings(value, name)
        if kind == "fuzzy_match" and value != "N/A":  # WebArena writes "N/A" as a bare string
            check.strings(value, name + ' (or the string "N/A")')

    reference_url = ev.get("reference_url")
    if "url_match" in eval_types and not isinstance(reference_url, str):
        raise check.fail("eval.reference_url", "a string (eval_types has url_match)",
                         reference_url if "reference_url" in ev else "nothing (the key is missing)")
    if reference_url is not None and not isinstance(reference_url, str):
        raise check.fail("eval.reference_url", "a string", reference_url)
    url_note = ev.get("url_note", "GOLD in PRED")
    if url_note not in URL_NOTES:
        raise check.fail("eval.url_note", f"one of {', '.join(repr(n) for n in URL_NOTES)}", url_note)
    string_note = ev.get("string_note") or ""
    if not isinstance(string_note, str):
        raise check.fail("eval.string_note", "a string", string_note)

    targets_raw = ev.get("program_html")
    if targets_raw is None and "program_html" not in eval_types:
        targets_raw = []
    if not isinstance(targets_raw, list):
        raise check.fail("eval.program_html", "a list of {url, locator, required_contents} objects",
                         targets_raw if "program_html" in ev else "nothing (the key is missing)")
    targets = tuple(_parse_target(t, f"eval.program_html[{i}]", check) for i, t in enumerate(targets_raw))

    return EvalConfig(
        eval_types=tuple(eval_types),
        reference_answers=dict(answers),
        reference_url=reference_url or "",
        url_note=url_note,
        string_note=string_note,
        program_html=targets,
    )


def _parse_target(target: Any, name: str, check: _Checker) -> ProgramHtmlTarget:
    if not isinstance(target, dict):
        raise check.fail(name, "an object with url, locator and required_contents", target)
    url = check.string(target, "url", f"{name}.url", non_empty=True)
    locator = check.string(target, "locator", f"{name}.locator")
    stripped = locator.strip()
    if stripped and not stripped.startswith(("document.", "[...document.", "func:")):
        raise check.fail(f"{name}.locator", '"" (whole page), JavaScript starting with "document." '
                         'or "[...document.", or "func:helper(...)"', locator)
    prep_actions = check.strings(target.get("prep_actions", []), f"{name}.prep_actions")
    required = target.get("required_contents")
    # WebArena reads exact_match first, then must_include, and ignores any other key beside them.
    if isinstance(required, dict) and "exact_match" in required:
        if not isinstance(required["exact_match"], str):
            raise check.fail(f"{name}.required_contents.exact_match", "a string", required["exact_match"])
        return ProgramHtmlTarget(url, locator, exact_match=required["exact_match"], prep_actions=prep_actions)
    if isinstance(required, dict) and "must_include" in required:
        must = check.strings(required["must_include"], f"{name}.required_contents.must_include")
        return ProgramHtmlTarget(url, locator, must_include=must, prep_actions=prep_actions)
    raise check.fail(f"{name}.required_contents", 'an object with "exact_match" or "must_include"', required)


def _parse_verified(data: dict[str, Any], original: dict[str, Any], check: _Checker, source: str) -> TaskConfig:
    start_urls = check.strings(data.get("start_urls"), "start_urls", non_empty=True)
    evaluators = data.get("eval")
    if not isinstance(evaluators, list) or not evaluators or not all(
            isinstance(e, dict) and isinstance(e.get("evaluator"), str) for e in evaluators):
        raise check.fail("eval", 'a non-empty list of {"evaluator": ...} objects (WebArena-Verified format)',
                         evaluators)
    if not any(e["evaluator"] == "AgentResponseEvaluator" for e in evaluators):
        raise check.fail("eval", "a list with an AgentResponseEvaluator", [e["evaluator"] for e in evaluators])
    revision = data.get("revision")
    if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int)):
        raise check.fail("revision", "an integer", revision)
    return TaskConfig(
        **_common_fields(data, check),
        start_urls=tuple(u.strip() for u in start_urls),
        revision=revision,
        verified_eval=tuple(evaluators),
        raw=original,
        source=source,
    )
