"""Configuration: one typed settings object read from env vars, overridden by CLI flags.

Precedence, lowest first: defaults < env vars (`OPENAI_*`, `FORETHOUGHT_*`) < CLI flags
(`Settings.with_overrides`). Each role (policy, world_model, verifier) falls back to the shared
setting for anything it does not set itself: FORETHOUGHT_POLICY_MODEL beats FORETHOUGHT_MODEL.
"""
from __future__ import annotations

import asyncio
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.llm.activity import CallActivity
from agent.llm.budget import Budget
from agent.llm.pricing import Price, PriceTable, default_price_table
from agent.llm.protocol import LLM, ROLES, Completion, ConfigError, InOrderLLM, Role, check_role
from agent.llm.scripted import ScriptedLLM
from envs.secrets import url_credentials, without_credentials
from world_model.messages import Message

if TYPE_CHECKING:  # the openai SDK takes ~0.4 s to import: only runs that call a model load it
    import openai

    from agent.llm.local_model import SlotSharing
    from agent.llm.openai_client import OpenAIChatLLM, RetryPolicy

__all__ = [
    "ConfigError", "RoleSettings", "Settings", "load_settings", "RoutedLLM", "build_llm", "client_for_spec", "SCHEMES",
    "without_credentials",
]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
SCHEMES = ("openai", "scripted", "replay", "local", "gguf")
LOCAL_SPEC = "local"  # the default when no model and no endpoint is configured (agent/llm/catalogue.py)
LOCAL_SCHEMES = ("local", "gguf")  # models served on this machine by llama.cpp (agent/llm/local_model.py)
NO_MODEL = (
    "no model configured: pass --model openai:gpt-4o and set OPENAI_API_KEY, "
    "or --model scripted:FILE (a JSON file of answers per role), or set FORETHOUGHT_MODEL"
)


class RoleSettings(BaseModel):
    """What one role's calls go to, after falling back to the shared settings."""

    model: str | None = None  # a spec: openai:MODEL or scripted:FILE
    base_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    temperature: float | None = None  # None: the endpoint's default
    samples: int = 1
    max_tokens: int | None = None


def _shared(*env_names: str) -> Any:
    # populate_by_name lets code and flags still use the field's own name.
    return Field(default=None, validation_alias=AliasChoices(*env_names))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FORETHOUGHT_", populate_by_name=True, protected_namespaces=())

    # Shared by all roles unless a role sets its own.
    model: str | None = None
    base_url: str | None = _shared("FORETHOUGHT_BASE_URL", "OPENAI_BASE_URL")
    api_key: str | None = Field(default=None, repr=False,
                                validation_alias=AliasChoices("FORETHOUGHT_API_KEY", "OPENAI_API_KEY"))
    temperature: float | None = None
    samples: int = 1
    max_tokens: int | None = None
    seed: int | None = None  # sent to the endpoint so sampled answers repeat run to run; None: not sent

    policy_model: str | None = None
    policy_base_url: str | None = None
    policy_api_key: str | None = Field(default=None, repr=False)
    policy_temperature: float | None = None
    policy_samples: int | None = None
    policy_max_tokens: int | None = None

    world_model_model: str | None = None
    world_model_base_url: str | None = None
    world_model_api_key: str | None = Field(default=None, repr=False)
    world_model_temperature: float | None = None
    world_model_samples: int | None = None
    world_model_max_tokens: int | None = None

    verifier_model: str | None = None
    verifier_base_url: str | None = None
    verifier_api_key: str | None = Field(default=None, repr=False)
    verifier_temperature: float | None = None
    verifier_samples: int | None = None
    verifier_max_tokens: int | None = None

    # Per-task budget; None means unlimited. A limit is a positive, finite number (Budget checks it too).
    budget_tokens: int | None = Field(default=None, gt=0)
    budget_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    budget_calls: int | None = Field(default=None, gt=0)

    max_concurrency: int = Field(default=16, ge=1)  # LLM requests in flight, across all roles
    request_timeout: float = Field(default=60.0, gt=0)  # seconds per request
    max_retries: int = Field(default=4, ge=0)
    retry_base_delay: float = Field(default=0.5, ge=0)  # seconds; backoff doubles per retry
    prices: Path | None = None  # JSON file extending the price table

    def with_overrides(self, **flags: Any) -> Settings:
        """These settings with CLI flags applied; a flag of None was not given and changes nothing."""
        unknown = set(flags) - set(type(self).model_fields)
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        given = {name: value for name, value in flags.items() if value is not None}
        try:
            # model_validate (unlike the constructor) does not read the environment again.
            return type(self).model_validate({**self.model_dump(), **given})
        except ValidationError as exc:
            raise ConfigError(_describe(exc, "option")) from None

    def role(self, role: Role) -> RoleSettings:
        """The settings `role` runs with: its own where set, else the shared ones."""
        check_role(role)

        def pick(name: str) -> Any:
            own = getattr(self, f"{role}_{name}")
            return getattr(self, name) if own is None else own

        return RoleSettings(**{name: pick(name) for name in RoleSettings.model_fields})

    def model_spec(self, role: Role) -> str | None:
        """The spec of the model `role`'s calls go to: its own or the shared one, else `local` when no model and
        no endpoint is configured at all."""
        configured = any(self.role(r).model or self.role(r).base_url for r in ROLES)
        return self.role(role).model or (None if configured else LOCAL_SPEC)

    def runs_locally(self, role: Role) -> bool:
        """Whether `role`'s model is served here by llama.cpp (local, local:NAME, gguf:PATH)."""
        spec = self.model_spec(role)
        return spec is not None and spec.partition(":")[0] in LOCAL_SCHEMES

    def credentials(self) -> list[str]:
        """What must never reach a run directory: each role's API key and its base URL's userinfo password."""
        found: list[str] = []
        for role in ROLES:
            spec = self.role(role)
            found += url_credentials(spec.base_url)
            if spec.api_key and len(spec.api_key) >= 8:  # not a placeholder such as "x" for a local server
                found.append(spec.api_key)
        return sorted(set(found))

    def budget(self) -> Budget:
        return Budget(max_tokens=self.budget_tokens, max_calls=self.budget_calls, max_usd=self.budget_usd)

    def retry_policy(self) -> RetryPolicy:
        from agent.llm.openai_client import RetryPolicy

        return RetryPolicy(max_retries=self.max_retries, base_delay_s=self.retry_base_delay)


def load_settings(**flags: Any) -> Settings:
    """Settings from the environment with CLI flags applied; bad values raise a one-line ConfigError."""
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(_describe(exc, "environment variable")) from None
    return settings.with_overrides(**flags)


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        if source == "environment variable" and not name.isupper():
            name = f"FORETHOUGHT_{name.upper()}"
        if source == "option":  # as the user typed it
            name = _FLAGS.get(name, "--" + name.replace("_", "-"))
            problems.append(f"{name} {error.get('input')!r}: {error['msg']}")
        else:
            problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
    return f"invalid {source}: " + "; ".join(problems)


_FLAGS = {"world_model_model": "--world-model", "seed": "--model-seed"}  # settings whose flag is named otherwise


class RoutedLLM:
    """Sends each role's calls to the client configured for it, and tells `activity` (when one is set: a
    live display) which calls are in flight."""

    def __init__(self, clients: dict[Role, LLM], activity: CallActivity | None = None) -> None:
        self.clients = clients
        self.activity = activity

    async def aclose(self) -> None:
        """Close every client's connections (call once the run is over)."""
        closed: set[int] = set()
        for client in self.clients.values():
            if id(client) not in closed and hasattr(client, "aclose"):
                closed.add(id(client))
                await client.aclose()

    def skip_answered(self, calls: list[tuple[Role, list[Message], int]]) -> None:
        """A resumed run: clients that answer in order (scripted) skip what its finished steps used."""
        for client in {id(c): c for c in self.clients.values()}.values():
            if isinstance(client, InOrderLLM):
                client.skip_answered([call for call in calls if self.clients.get(call[0]) is client])

    async def __aenter__(self) -> RoutedLLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def complete(
        self,
        role: Role,
        messages: list[Message],
        *,
        n: int = 1,
        json_schema: dict[str, Any] | None = None,
        temperature: float | None = None,
    ) -> list[Completion]:
        client = self.clients.get(check_role(role))
        if client is None:
            raise ConfigError(
                f"no model configured for role {role!r}: pass --model (all roles) or "
                f"--{role.replace('_', '-')}-model, or set FORETHOUGHT_{role.upper()}_MODEL"
            )
        with self.activity.call(role, json_schema) if self.activity else nullcontext():
            return await client.complete(role, messages, n=n, json_schema=json_schema, temperature=temperature)


class _Clients:
    """Clients shared between roles: one AsyncOpenAI per endpoint, one ScriptedLLM per file, one semaphore."""

    def __init__(self, settings: Settings, prices: PriceTable) -> None:
        self.settings = settings
        self.prices = prices
        self.semaphore = asyncio.Semaphore(settings.max_concurrency)
        self.openai_clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self.scripted: dict[Path, ScriptedLLM] = {}
        self.replayed: dict[Path, LLM] = {}  # one per trace, so every role shares its answers
        self.slot_sharing: dict[Path, SlotSharing] = {}  # one per local server, shared by all roles

    def openai_client(self, base_url: str | None, api_key: str | None) -> openai.AsyncOpenAI:
        base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if not api_key:
            if base_url == DEFAULT_BASE_URL:
                raise ConfigError(
                    "OPENAI_API_KEY is not set: export OPENAI_API_KEY=sk-... for OpenAI, "
                    "or set OPENAI_BASE_URL / --base-url to a server that needs no key"
                )
            api_key = "no-key"  # local servers (vLLM, Ollama, llama.cpp) ignore it, the SDK requires one
        return self._endpoint(base_url, api_key, self.settings.request_timeout)

    def _endpoint(self, base_url: str, api_key: str, timeout: float) -> openai.AsyncOpenAI:
        import openai

        key = (base_url, api_key)
        if key not in self.openai_clients:
            self.openai_clients[key] = openai.AsyncOpenAI(
                base_url=base_url, api_key=api_key, timeout=timeout, max_retries=0,
                # The SDK's own HTTP client closes itself on garbage collection from a background task,
                # which was seen to stall other clients' requests until their timeout; this one does not.
                http_client=openai.DefaultAsyncHttpxClient(timeout=timeout),
            )
        return self.openai_clients[key]

    def chat_llm(self, model: str, endpoint: openai.AsyncOpenAI, role: RoleSettings, max_tokens: int | None,
                 prices: PriceTable) -> OpenAIChatLLM:
        from agent.llm.openai_client import OpenAIChatLLM

        return OpenAIChatLLM(model, endpoint, semaphore=self.semaphore, temperature=role.temperature,
                             max_tokens=max_tokens, retry=self.settings.retry_policy(), prices=prices,
                             seed=self.settings.seed)

    def replay_llm(self, path: str) -> LLM:
        from agent.llm.replayed import ReplayLLM  # reads traces; imported only when asked for

        resolved = Path(path).expanduser().resolve()
        if resolved not in self.replayed:
            self.replayed[resolved] = ReplayLLM.from_dir(resolved)
        return self.replayed[resolved]

    def local_llm(self, gguf: Path, model_name: str, role: RoleSettings) -> LLM:
        """A client of the llama.cpp server for `gguf`, started on first use and shared by every role."""
        from agent.llm import local_model  # starts processes; imported only when a local model is asked for

        server = local_model.shared_server(gguf)
        # Local prompts can take minutes on a busy CPU; the endpoint is ours, so waiting is safe.
        timeout = max(self.settings.request_timeout, local_model.REQUEST_TIMEOUT_S)
        endpoint = self._endpoint(str(server.base_url), "no-key", timeout)
        free = PriceTable({model_name: Price(input=0.0, output=0.0)})  # computed here
        llm = self.chat_llm(model_name, endpoint, role, role.max_tokens or local_model.MAX_TOKENS, free)
        sharing = self.slot_sharing.setdefault(
            server.gguf, local_model.SlotSharing(str(server.base_url).removesuffix("/v1"), server.settings.parallel))
        return local_model.SlotSharingLLM(llm, sharing)

    def scripted_llm(self, path: str) -> ScriptedLLM:
        resolved = Path(path).expanduser().resolve()
        if resolved not in self.scripted:
            self.scripted[resolved] = ScriptedLLM.from_file(resolved)
        return self.scripted[resolved]


def client_for_spec(spec: str, role: RoleSettings, clients: _Clients) -> LLM:
    """The client a model spec names. New schemes (replay:, local:, gguf:) get a branch here."""
    if spec == LOCAL_SPEC:  # the run default of the model catalogue, fetched on first use
        from agent.llm.model_store import default_model

        model = default_model()
        return clients.local_llm(model.path, model.name, role)
    scheme, colon, rest = spec.partition(":")
    if not colon or not rest:
        raise ConfigError(
            f"model spec {spec!r} needs a scheme and a name, e.g. openai:{spec or 'gpt-4o'} "
            f"(schemes: {', '.join(SCHEMES)})"
        )
    if scheme == "openai":
        endpoint = clients.openai_client(role.base_url, role.api_key)
        return clients.chat_llm(rest, endpoint, role, role.max_tokens, clients.prices)
    if scheme == "scripted":
        return clients.scripted_llm(rest)
    if scheme == "replay":  # answers from a recorded trace: replay:runs/<run-id>/<task-id>
        return clients.replay_llm(rest)
    if scheme == "local":  # a catalogue model (fetched on first use) or a cached one, by name (`forethought models`)
        from agent.llm.model_store import model_named

        model = model_named(rest)
        return clients.local_llm(model.path, model.name, role)
    if scheme == "gguf":  # any GGUF file, served by llama.cpp
        from agent.llm.model_store import gguf_file

        path = gguf_file(rest)
        return clients.local_llm(path, path.stem, role)
    raise ConfigError(f"unknown model scheme {scheme!r} in {spec!r}; known schemes: {', '.join(SCHEMES)}")


def build_llm(settings: Settings, roles: tuple[Role, ...] = ROLES, prices: PriceTable | None = None) -> RoutedLLM:
    """One client per role. Every role in `roles` must have a model; other roles get one if configured."""
    if prices is None:
        prices = default_price_table(settings.prices)
    clients = _Clients(settings, prices)
    routed: dict[Role, LLM] = {}
    for role in ROLES:
        role_settings = settings.role(role)
        spec = settings.model_spec(role)
        if spec:
            routed[role] = client_for_spec(spec, role_settings, clients)
        elif role in roles:
            if not any(settings.role(r).model for r in ROLES):
                raise ConfigError(NO_MODEL)
            raise ConfigError(
                f"no model configured for role {role!r}: pass --model (all roles) or "
                f"--{role.replace('_', '-')}-model, or set FORETHOUGHT_{role.upper()}_MODEL"
            )
    return RoutedLLM(routed)
