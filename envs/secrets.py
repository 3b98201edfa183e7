"""Credentials the agent uses by name: the model sees `{{NAME}}`, the page gets the value.

Syntax: a task or goal refers to a secret as `{{NAME}}` (letters, digits, underscore), e.g. the goal
"log in as {{user}} with password {{password}}", and the model writes `fill('e3', '{{password}}')`.
BrowserEnv substitutes values only when it executes an action's text (fill, press, keyboard_press,
send_msg_to_user is left alone), and writes `{{NAME}}` back over any value that shows up in an
observation, so prompts, traces and reports only ever hold names. `{{other}}` that names no secret is
typed as is.

Masking (`Masker`) finds a value in every form a file can hold it: plain; percent-encoded (%XX in either
case, `+` for a space, or encoded twice as %25XX); JSON-, JavaScript- or Python-escaped (\\uXXXX, \\", \\\\,
\\/, \\xNN); HTML-escaped (&quot;, &#34;, &#x22;); and, for values of MIN_BASE64_BYTES or more, base64
(standard or URL-safe) at any offset inside a longer base64 text. A value over PATTERNED_CHARS
characters is matched as the usual encoders write it (urllib's quote, json.dumps, html.escape, repr),
each form exactly. A head or tail of a value (FRAGMENT_ANCHOR characters or more, plain), as a clipped
prompt history shows it, is masked too. It also masks the credentials of any URL
(`scheme://user:password@`). `mask_json_document` decodes base64 bodies (HAR "encoding": "base64") before
masking them.

Given on the command line as `--secret NAME=VALUE` (repeatable) or `--secrets-file FILE`, a file of
KEY=VALUE lines (# comments allowed) or one JSON object of strings.
"""
from __future__ import annotations

import base64
import dataclasses
import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, urlsplit, urlunsplit

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


def url_credentials(url: str | None) -> list[str]:
    """The secret part of a URL's userinfo (`user:password@`: the password; `token@`: the token), decoded."""
    if not url or "@" not in url:
        return []
    parts = urlsplit(url)
    secret = parts.password if parts.password is not None else parts.username
    return [unquote(secret)] if secret else []


def without_credentials(url: str | None) -> str | None:
    """A URL fit for a file or a message: `user:password@` removed (host and port kept as written)."""
    if not url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


MIN_BASE64_BYTES = 6  # shorter values have base64 forms of a few characters, found in any long base64 text
PATTERNED_CHARS = 256  # longer values are matched in their usual encodings only (see value_pattern)
FRAGMENT_ANCHOR = 16  # a value's first or last this many characters mark a piece of it left by a cut
# A URL's userinfo (`scheme://user:password@`, also with JSON-escaped slashes `:\\/\\/`); it starts at the
# `:` (a literal: the regex engine skips ahead to those) after a scheme's last character.
_USERINFO = re.compile(r"(?P<separator>:(?<=[A-Za-z0-9+.-]:)(?:\\?/){2})[^\s/\\?#@\"'<>]+@")
_NAMED_ENTITIES = {"&": ["amp"], "<": ["lt"], ">": ["gt"], '"': ["quot"], "'": ["apos"]}
_SHORT_ESCAPES = {"\n": "n", "\r": "r", "\t": "t", "\b": "b", "\f": "f"}


def without_url_credentials(text: str) -> str:
    """`text` (a message) with the credentials of every URL in it masked."""
    return Masker().mask(text)


def _hex(number: int, width: int) -> str:
    """`number` in hex digits, each letter in either case."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{number:0{width}x}")


def _char_forms(char: str) -> list[str]:
    """Patterns for one character as any writer may have escaped it."""
    utf8, code = char.encode("utf-8"), ord(char)
    units = [code] if code < 0x10000 else [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)]
    forms = [re.escape(char),
             "".join("%" + _hex(b, 2) for b in utf8),  # URLs, forms
             "".join("%25" + _hex(b, 2) for b in utf8),  # a URL inside a URL's query
             "".join(r"\\u" + _hex(u, 4) for u in units),  # JSON, JavaScript
             f"&#0*{code};", f"&#[xX]0*{_hex(code, 1)};",  # HTML
             *(f"&{name};" for name in _NAMED_ENTITIES.get(char, []))]
    if char == " ":
        forms.append(r"\+")
    if char in "\"'\\/":
        forms.append(r"\\" + re.escape(char))
    if char in _SHORT_ESCAPES:
        forms.append(r"\\" + _SHORT_ESCAPES[char])
    if code < 0x100:
        forms.append(r"\\x" + _hex(code, 2))  # Python repr, JavaScript
    return forms


def _base64_forms(value: str) -> list[str]:
    """The characters base64 writes for `value` wherever it sits inside a longer text: at each of the
    three byte offsets, the characters that depend on the value's bytes alone (and the whole encoding)."""
    data = value.encode("utf-8")
    if len(data) < MIN_BASE64_BYTES:
        return []
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms.add(encode(data).decode())
        for offset in range(3):
            text = encode(bytes(offset) + data).decode()
            forms.add(text[-(-8 * offset // 6): 8 * (offset + len(data)) // 6])
    return sorted(forms, key=len, reverse=True)


def literal_forms(value: str) -> list[str]:
    """`value` as the usual encoders write it, each form exactly, longest first: what a value too long
    for value_pattern is matched by."""
    percent = {quote(value, safe=""), quote(value), quote_plus(value)}
    forms = {value, *percent, *(quote(form, safe="") for form in percent),
             json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             html.escape(value), html.escape(value, quote=False), repr(value)[1:-1], *_base64_forms(value)}
    return sorted(forms, key=len, reverse=True)


def value_pattern(value: str) -> str:
    """A regular expression matching `value` in any form a file can hold it (see the module's docstring).

    Every alternative starts with a literal character: the regex engine then skips ahead to the
    characters that can start a match instead of trying each position (tens of times faster)."""
    if not value:
        return "(?!)"
    rest = "".join("(?:" + "|".join(_char_forms(char)) + ")" for char in value[1:])
    return "|".join([*(first + rest for first in _char_forms(value[0])), *map(re.escape, _base64_forms(value))])


class Masker:
    """Writes a replacement over secret values in every form, and over the credentials of any URL."""

    def __init__(self, replacements: Mapping[str, str] | None = None, url_mask: str = "********") -> None:
        """`replacements`: value -> what to write in its place."""
        self.replacements: dict[str, str] = {}
        self.url_mask = url_mask
        self._pattern: re.Pattern[str] | None = None
        self._patterns: list[tuple[re.Pattern[str], str]] = []  # each value's own, to tell which one matched
        self._long: list[tuple[list[str], str]] = []  # values over PATTERNED_CHARS: their forms, the replacement
        for value, replacement in (replacements or {}).items():
            self.add(value, replacement)

    def __bool__(self) -> bool:
        return bool(self.replacements)

    def add(self, value: str, replacement: str) -> bool:
        """Mask `value` from now on; False if it was masked already (or is empty)."""
        if not value or self.replacements.get(value) == replacement:
            return False
        self.replacements[value] = replacement
        # Longest first, so a value inside another is masked as part of the longer one. A pattern of a
        # long value takes minutes to compile (a 200,000-character fill into a password field): such
        # values are replaced in their usual forms, before any patterned (shorter) one.
        ordered = sorted(self.replacements, key=len, reverse=True)
        self._long = [(literal_forms(v), self.replacements[v]) for v in ordered if len(v) > PATTERNED_CHARS]
        patterned = [v for v in ordered if len(v) <= PATTERNED_CHARS]
        self._patterns = [(re.compile(value_pattern(v)), self.replacements[v]) for v in patterned]
        self._pattern = re.compile("|".join(value_pattern(v) for v in patterned)) if patterned else None
        return True

    def _replace(self, match: re.Match[str]) -> str:
        return next(replacement for pattern, replacement in self._patterns if pattern.fullmatch(match.group()))

    def mask(self, text: str) -> str:
        for forms, replacement in self._long:
            for form in forms:
                text = text.replace(form, replacement)
        if self._pattern is not None:
            text = self._pattern.sub(self._replace, text)
        for value, replacement in self.replacements.items():
            if len(value) > FRAGMENT_ANCHOR:
                text = _mask_pieces(text, value, replacement)
        if ":/" in text or ":\\/" in text:  # only then can a URL hold credentials
            text = _USERINFO.sub(lambda m: m.group("separator") + self.url_mask + "@", text)
        return text

    def mask_bytes(self, data: bytes) -> bytes:
        """Bytes of any encoding: non-UTF-8 bytes pass through unchanged."""
        return self.mask(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def mask_data(self, data: Any) -> Any:
        """Strings in JSON-like data (dicts, lists), keys included; a HAR body with "encoding": "base64" is
        decoded, masked and encoded again."""
        if isinstance(data, str):
            return self.mask(data)
        if isinstance(data, dict):
            masked = {self.mask(k) if isinstance(k, str) else k: self.mask_data(v) for k, v in data.items()}
            if data.get("encoding") == "base64" and isinstance(data.get("text"), str):
                masked["text"] = self._mask_base64(data["text"])
            return masked
        if isinstance(data, (list, tuple)):
            return [self.mask_data(v) for v in data]
        return data

    def _mask_base64(self, text: str) -> str:
        try:
            decoded = base64.b64decode(text, validate=True)
        except ValueError:
            return self.mask(text)
        return base64.b64encode(self.mask_bytes(decoded)).decode("ascii")

    def mask_json_document(self, data: bytes) -> bytes:
        """A JSON file (a HAR) masked string by string; bytes that are not JSON are masked as bytes."""
        try:
            document = json.loads(data)
        except ValueError:
            return self.mask_bytes(data)
        return json.dumps(self.mask_data(document), ensure_ascii=False, indent=2).encode("utf-8")


def _mask_pieces(text: str, value: str, replacement: str) -> str:
    """`text` with the pieces of `value` a cut leaves masked too: a head (from the value's start, as far
    as it goes on matching) or a tail (up to the value's end), as a prompt's clipped history shows them."""
    head, tail = value[:FRAGMENT_ANCHOR], value[-FRAGMENT_ANCHOR:]
    pieces, start, position = [], 0, 0
    while hits := [hit for hit in (text.find(head, position), text.find(tail, position)) if hit >= 0]:
        position = min(hits)
        if text.startswith(head, position):
            begin = position
            end = position + len(os.path.commonprefix([text[position:position + len(value)], value]))
        else:
            before = text[max(start, position + len(tail) - len(value)):position]
            begin = position - len(os.path.commonprefix([before[::-1], value[-len(tail) - 1::-1]]))
            end = position + len(tail)
        pieces += [text[start:begin], replacement]
        start = position = end
    return "".join(pieces) + text[start:]


@dataclasses.dataclass
class Secrets:
    values: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> value
    _masker: tuple[tuple[tuple[str, str], ...], Masker] | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False)

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
        """Every secret value, in any form (`Masker`) -> `{{NAME}}`."""
        return self.masker().mask(text)

    def masker(self) -> Masker:
        """A Masker writing `{{NAME}}` over each value (built again only when the values change)."""
        key = tuple(sorted(self.values.items()))
        if self._masker is None or self._masker[0] != key:
            self._masker = (key, Masker({value: "{{" + name + "}}" for name, value in self.values.items()}))
        return self._masker[1]

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
        return _masked(obs, self.masker().mask)


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
