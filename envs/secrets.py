"""Credentials the agent uses by name: the model sees `{{NAME}}`, the page gets the value.

Syntax: a task or goal refers to a secret as `{{NAME}}` (letters, digits, underscore), e.g. the goal
"log in as {{user}} with password {{password}}", and the model writes `fill('e3', '{{password}}')`.
BrowserEnv substitutes values only when it executes an action's text (fill, press, keyboard_press,
send_msg_to_user is left alone), and writes `{{NAME}}` back over any value that shows up in an
observation, so prompts, traces and reports only ever hold names. `{{other}}` that names no secret is
typed as is.

Given on the command line as `--secret NAME=VALUE` (repeatable) or `--secrets-file FILE`, a file of
KEY=VALUE lines (# comments allowed) or one JSON object of strings.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from envs.actions import Action
from envs.types import Observation

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(r"\{\{(" + NAME_PATTERN + r")\}\}")
# Actions whose text arguments are typed into the page (the index of the text argument).
_TYPED_TEXT = {"fill": 1, "press": 1, "keyboard_press": 0}


def is_reference(text: str) -> bool:
    """True for text that is only a `{{NAME}}` reference: the name of a secret, not a value."""
    return _REFERENCE.fullmatch(text.strip()) is not None


class SecretsError(ValueError):
    pass


def parse_secret(text: str) -> tuple[str, str]:
    """NAME=VALUE -> (NAME, VALUE)."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not re.fullmatch(NAME_PATTERN, name):
        raise SecretsError(f"--secret expects NAME=VALUE with NAME of letters, digits and _, got {name or text!r}")
    if not value:
        raise SecretsError(f"--secret {name}= has an empty value; give NAME=VALUE")
    return name, value


def load_secrets_file(path: str | Path) -> dict[str, str]:
    """A JSON object of strings, or KEY=VALUE lines (blank lines and # comments skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretsError(f"cannot read secrets file {path}: {exc.strerror or exc}") from None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SecretsError(f"secrets file {path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not all(isinstance(v, str) for v in data.values()):
            raise SecretsError(f"secrets file {path}: every value must be a string")
        return dict(parse_secret(f"{k}={v}") for k, v in data.items())
    secrets: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            name, value = parse_secret(line)
        except SecretsError as exc:
            raise SecretsError(f"secrets file {path}, line {number}: {exc}") from None
        secrets[name] = value
    return secrets


def api_key_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of *_API_KEY / *_TOKEN environment variables: masked in run directories, just in case."""
    environ = os.environ if environ is None else environ
    return [v for k, v in environ.items() if v and len(v) >= 8 and k.upper().endswith(("API_KEY", "_TOKEN"))]


@dataclasses.dataclass
class Secrets:
    values: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> value

    @classmethod
    def from_args(cls, pairs: Iterable[str] = (), files: Iterable[str | Path] = ()) -> Secrets:
        values: dict[str, str] = {}
        for path in files:
            values.update(load_secrets_file(path))
        for pair in pairs:
            name, value = parse_secret(pair)
            values[name] = value
        return cls(values)

    def __bool__(self) -> bool:
        return bool(self.values)

    def substitute(self, text: str) -> str:
        """`{{NAME}}` -> the value of secret NAME; other text unchanged."""
        return _REFERENCE.sub(lambda m: self.values.get(m.group(1), m.group(0)), text)

    def mask(self, text: str) -> str:
        """Every secret value -> `{{NAME}}` (longest first, so one value inside another is still masked)."""
        for name, value in sorted(self.values.items(), key=lambda item: len(item[1]), reverse=True):
            text = text.replace(value, "{{" + name + "}}")
        return text

    def substitute_action(self, action: Action) -> Action:
        """The action to execute: its typed text with secret values in place of their names."""
        index = _TYPED_TEXT.get(action.name)
        if not self.values or index is None or not isinstance(action.args[index], str):
            return action
        args = list(action.args)
        args[index] = self.substitute(args[index])
        return dataclasses.replace(action, args=tuple(args))

    def mask_observation(self, obs: Observation) -> Observation:
        """The observation with every secret value shown as its name (the model must never see values)."""
        if not self.values:
            return obs
        return _masked(obs, self.mask)


def _masked(value: Any, mask: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [_masked(v, mask) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _masked(field_value, mask) for f in dataclasses.fields(value)
                   if isinstance(field_value := getattr(value, f.name), (str, list))
                   or dataclasses.is_dataclass(field_value)}
        return dataclasses.replace(value, **changes)
    return value
