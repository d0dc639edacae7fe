"""The configuration: one frozen pydantic object from a YAML file plus ``STSYNC_<SECTION>__<KEY>`` overrides.

Precedence, lowest first: defaults, the YAML file (``--config`` or ``$STSYNC_CONFIG``), systemd credentials
(``$CREDENTIALS_DIRECTORY/<section>.<key>``, secrets only), environment variables. A secret ``<key>``
may instead be given as ``<key>_file`` (a path to a file holding it) in YAML or as
``STSYNC_<SECTION>__<KEY>_FILE``.

Every error is one line naming the key and where it came from; values of secrets never appear in
errors, reprs or ``config show``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from stsync.errors import ConfigError
from stsync.masking import MASK, mask_dsn, mask_webhook

ENV_PREFIX = "STSYNC_"
SECRET_KEYS = frozenset(
    {"database.url", "servicetitan.client_secret", "servicetitan.app_key", "ghl.token", "smtp.password"}
)

HOSTS = {
    "production": ("https://api.servicetitan.io", "https://auth.servicetitan.io"),
    "integration": ("https://api-integration.servicetitan.io", "https://auth-integration.servicetitan.io"),
}


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatabaseConfig(_Section):
    url: SecretStr | None = None  # libpq URL or key=value string; may carry a password
    connect_timeout: float = Field(default=10, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _conninfo(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            from stsync.db.connect import conninfo_problem

            problem = conninfo_problem(value.get_secret_value())
            if problem is not None:
                raise ValueError(f"it {problem}")
        return value


_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def check_url(url: str, *, allow_insecure: bool = False, https_only: bool = False) -> str:
    """``url`` without a trailing slash, or ValueError: an http(s) URL, and https unless it is loopback (or,
    where allowed, ``allow_insecure``): over plain http the token and the app key travel in clear."""
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError("must be an http:// or https:// URL")
    parts = urlsplit(url)
    if parts.scheme.lower() == "http" and (parts.hostname or "") not in _LOOPBACK and not allow_insecure:
        if https_only:
            raise ValueError("must be an https:// URL (plain http only to a loopback host)")
        raise ValueError("plain http:// to a host that is not loopback; use https:// or set allow_insecure_http")
    return url.rstrip("/")


class ServiceTitanConfig(_Section):
    environment: Literal["production", "integration"] = "production"
    api_base_url: str | None = None  # overrides the environment's API host (e.g. the sandbox)
    auth_url: str | None = None  # overrides the environment's auth host; the client appends /connect/token
    tenant_id: int | None = Field(default=None, gt=0)
    client_id: str | None = None
    client_secret: SecretStr | None = None
    app_key: SecretStr | None = None
    requests_per_second: float = Field(default=50, gt=0, le=60)
    page_size: int = Field(default=5000, ge=1, le=5000)
    timeout_seconds: float = Field(default=100, gt=0)
    # Ask export feeds for changes at once, not 15 minutes late; a record served again is merged as unchanged.
    include_recent_changes: bool = True
    # Streams writing at once; every stream downloads from the start.
    max_concurrency: int = Field(default=8, ge=1, le=64)
    # Page bodies held in memory at once by writing streams (waiting streams: half as much again on top).
    page_memory_mb: int = Field(default=48, ge=1, le=4096)
    retry_attempts: int = Field(default=8, ge=1, le=100)
    retry_max_seconds: float = Field(default=300, gt=0)
    # Keep the access token on disk for the next runs (ServiceTitan throttles its token endpoint).
    token_cache: bool = True
    # Default: $CACHE_DIRECTORY (systemd CacheDirectory=), else $XDG_CACHE_HOME/stsync, else ~/.cache/stsync.
    token_cache_dir: str | None = None

    # Plain http:// to a host that is not loopback (a proxy on a private network, say); secrets then travel in clear.
    allow_insecure_http: bool = False

    @model_validator(mode="before")
    @classmethod
    def _http_urls(cls, values: Any) -> Any:
        return _checked_urls(values, ("api_base_url", "auth_url"))

    def api_base(self) -> str:
        """Base URL of the ServiceTitan API (no trailing slash)."""
        return self.api_base_url or HOSTS[self.environment][0]

    def auth_base(self) -> str:
        """Base URL of the identity server; the token endpoint is ``{auth_base}/connect/token``."""
        return self.auth_url or HOSTS[self.environment][1]

    def token_cache_path(self, env: Mapping[str, str] | None = None) -> Path | None:
        """The directory of the on-disk token cache, or None when it is off."""
        if not self.token_cache:
            return None
        if self.token_cache_dir:
            return Path(self.token_cache_dir)
        from stsync.servicetitan.tokens import default_directory

        return default_directory(os.environ if env is None else env)


def _checked_urls(values: Any, keys: tuple[str, ...]) -> Any:
    """The section's raw values with its URL keys checked by ``check_url`` (before validation, because
    whether plain http is allowed is another key of the same section)."""
    if not isinstance(values, dict):
        return values
    allow = values.get("allow_insecure_http") in (True, "true", "True", "1", 1, "yes")
    for key in keys:
        if isinstance(values.get(key), str):
            try:
                values = {**values, key: check_url(values[key], allow_insecure=allow)}
            except ValueError as exc:
                raise PydanticCustomError("url", "{reason}", {"key": key, "reason": str(exc)}) from None
    return values


class SyncConfig(_Section):
    streams_include: tuple[str, ...] = ()  # empty: every stream
    streams_exclude: tuple[str, ...] = ()


class GhlBusinessUnit(_Section):
    """One ServiceTitan business unit's route into GHL (seeds integrations.business_units)."""

    id: int = Field(gt=0)
    name: str
    mode: Literal["api", "webhook"] = "api"
    pipeline: str | None = "Sales"  # GHL pipeline name or id (api mode)
    webhook_url: str | None = None  # inbound webhook-trigger URL (webhook mode)
    sync_enabled: bool = True

    @field_validator("webhook_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        return check_url(value, https_only=True) if value is not None else None

    @model_validator(mode="after")
    def _route(self) -> GhlBusinessUnit:
        if self.mode == "webhook" and not self.webhook_url:
            raise ValueError(f"business unit {self.id}: mode 'webhook' needs a webhook_url")
        if self.mode == "api" and not self.pipeline:
            raise ValueError(f"business unit {self.id}: mode 'api' needs a pipeline")
        return self


class GhlPipeline(_Section):
    """One ``ghl.pipelines.<pipeline>`` item: which of the location's stages (name or id) each of stsync's
    stages is (``stsync.ghl.stages``); stages left out keep their defaults."""

    kind: Literal["sales", "install"] | None = None  # default: install for ghl.install_pipeline, else sales
    stages: dict[str, str] = Field(default_factory=dict)


class GhlConfig(_Section):
    api_base_url: str = "https://services.leadconnectorhq.com"
    location_id: str | None = None
    token: SecretStr | None = None  # the location's Private Integration Token
    requests_per_10s: int = Field(default=98, gt=0, le=100_000)  # GHL allows 100; more only for a sandbox
    daily_reserve: int = Field(default=1000, ge=0)  # stop (exit 75) when the daily budget left drops below
    # Requests the push makes per location and UTC day over all its runs; GHL allows 200,000, shared with the
    # location's other apps. A run that reaches it stops cleanly (exit 0) and the next day's goes on.
    daily_request_budget: int = Field(default=150_000, gt=0, le=1_000_000)
    # Changes the push makes at once, so that GHL's latency (100-300 ms a request) does not hold the pace
    # below requests_per_10s; two changes on one GHL record never run at once.
    concurrency: int = Field(default=4, ge=1, le=16)
    protected_stages: tuple[str, ...] = ("sold", "lost")  # in stsync's stage names (stsync.ghl.stages)
    install_pipeline: str = "Install"  # pipelines of this name take their stage from the job status
    pipelines: dict[str, GhlPipeline] = Field(default_factory=dict)  # keyed as business units name them
    max_attempts: int = Field(default=5, ge=1, le=100)
    technicians_field: str = "Technicians"
    timeout_seconds: float = Field(default=30, gt=0)
    retry_attempts: int = Field(default=6, ge=1, le=100)
    retry_max_seconds: float = Field(default=120, gt=0)
    business_units: tuple[GhlBusinessUnit, ...] = ()
    allow_insecure_http: bool = False  # see servicetitan.allow_insecure_http

    @model_validator(mode="before")
    @classmethod
    def _http_urls(cls, values: Any) -> Any:
        return _checked_urls(values, ("api_base_url",))

    @field_validator("protected_stages")
    @classmethod
    def _stsync_stages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from stsync.ghl.stages import DEFAULTS, stsync_stage

        out = []
        for name in value:
            stage = stsync_stage(name)
            if stage is None:
                known = ", ".join(s for stages in DEFAULTS.values() for s in stages)
                raise ValueError(f"'{name}' is not one of stsync's stages ({known})")
            out.append(stage)
        return tuple(out)

    @model_validator(mode="after")
    def _stage_names(self) -> GhlConfig:
        from stsync.ghl.stages import DEFAULTS

        for name, pipeline in self.pipelines.items():
            kind = self.pipeline_kind(name)
            for stage, target in pipeline.stages.items():
                if stage not in DEFAULTS[kind]:
                    reason = f"not one of stsync's {kind} stages ({', '.join(DEFAULTS[kind])})"
                elif not target.strip():
                    reason = "empty; name a stage of the pipeline, or its id"
                else:
                    continue
                key = f"pipelines.{name}.stages.{stage}"
                raise PydanticCustomError("keyed", "{reason}", {"key": key, "reason": reason})
        return self

    def pipeline_kind(self, pipeline: str) -> Literal["sales", "install"]:
        """Install for the ``install_pipeline`` (by normalised name) unless ``ghl.pipelines`` says otherwise."""
        from stsync.ghl.stages import default_kind, norm

        configured = next((p for n, p in self.pipelines.items() if norm(n) == norm(pipeline)), None)
        if configured is not None and configured.kind is not None:
            return configured.kind
        return default_kind(pipeline, self.install_pipeline)


class EventsConfig(_Section):
    """``events:``: what the mirror's merge writes to automation.events, and how `events poll` works it off."""

    capture: bool = True
    # A stream's first walk into the mirror is its history: no events, unless this says so.
    capture_first_sync: bool = False
    # install_job_created: a job whose business unit's name contains one of these (any case), or whose id is listed.
    install_units: tuple[str, ...] = ("install",)
    install_unit_ids: tuple[int, ...] = ()
    overdue_grace_days: int = Field(default=0, ge=0, le=365)  # invoice_overdue this many days after the due date
    estimate_open_days: int = Field(default=7, ge=1, le=365)  # estimate_open: still Open this many days on
    batch: int = Field(default=500, ge=1, le=10_000)  # events and due steps one poll claims at a time
    lease_seconds: int = Field(default=300, ge=10, le=86_400)  # a claim not finished by then is taken again
    max_attempts: int = Field(default=5, ge=1, le=100)  # a step that failed this often is a dead letter
    retry_base_seconds: float = Field(default=60, gt=0)  # a failed step waits this, doubled each attempt
    timeout_seconds: float = Field(default=30, gt=0)  # each action's HTTP or SMTP call

    @model_validator(mode="after")
    def _lease(self) -> EventsConfig:
        # A step's lease must outlast its action, or another poll would take it over while it runs.
        if self.lease_seconds < 3 * self.timeout_seconds:
            reason = f"must be at least 3 x events.timeout_seconds ({3 * self.timeout_seconds:g})"
            raise PydanticCustomError("keyed", "{reason}", {"key": "lease_seconds", "reason": reason})
        return self


class SmtpConfig(_Section):
    """``smtp:``: the server the ``email`` action sends through (TLS unless the server is loopback)."""

    host: str | None = None
    port: int = Field(default=587, gt=0, lt=65536)
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    user: str | None = None
    password: SecretStr | None = None
    from_address: str | None = None
    timeout_seconds: float = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _tls(self) -> SmtpConfig:
        if self.tls == "none" and self.host is not None and self.host not in _LOOPBACK:
            raise PydanticCustomError(
                "keyed", "{reason}", {"key": "tls", "reason": "'none' only to a loopback host: use starttls or ssl"}
            )
        return self


class HealthConfig(_Section):
    """``health:``: the thresholds of `stsync health` (WARNING at the first of a pair, CRITICAL at the second) and
    the bounds of ``--heal``."""

    # How often the incremental sync runs (its timer or cron line): a stream is stale past 2 x, critical past 6 x.
    sync_every_minutes: float = Field(default=5, gt=0)
    # Per stream, where it runs less often (names checked by `stsync health`, as sync.streams_exclude by sync).
    stream_every_minutes: dict[str, PositiveFloat] = Field(default_factory=dict)
    quarantine_warning: int = Field(default=1, ge=1)  # open quarantined records
    quarantine_critical: int = Field(default=1000, ge=1)
    quarantine_growth_critical: int = Field(default=100, ge=1)  # records quarantined in the last 24 hours
    ghl_dead_warning: int = Field(default=1, ge=1)  # GHL dead letters (contacts, opportunities, webhook posts)
    ghl_dead_critical: int = Field(default=100, ge=1)
    ghl_pending_warning_minutes: float = Field(default=30, gt=0)  # a mirror change the push has not taken yet
    ghl_pending_critical_minutes: float = Field(default=180, gt=0)
    events_pending_warning_minutes: float = Field(default=15, gt=0)  # the oldest event `events poll` has not matched
    events_pending_critical_minutes: float = Field(default=60, gt=0)
    steps_late_warning_minutes: float = Field(default=15, gt=0)  # a workflow step past its due time
    steps_late_critical_minutes: float = Field(default=60, gt=0)
    events_dead_warning: int = Field(default=1, ge=1)  # workflow steps that failed max_attempts times
    events_dead_critical: int = Field(default=100, ge=1)
    lock_max_minutes: float = Field(default=120, gt=0)  # a sync or push holding its lock longer is stuck
    ping_timeout_seconds: float = Field(default=10, gt=0)
    # --heal requeues a GHL dead letter once, when it has been dead this long (a backoff, not a retry loop).
    heal_dead_letters_after_minutes: float = Field(default=60, gt=0)

    @model_validator(mode="after")
    def _pairs(self) -> HealthConfig:
        for low in ("quarantine", "ghl_dead", "ghl_pending", "events_pending", "steps_late", "events_dead"):
            unit = "_minutes" if low.endswith(("pending", "late")) else ""
            warning, critical = getattr(self, f"{low}_warning{unit}"), getattr(self, f"{low}_critical{unit}")
            if critical < warning:
                reason = f"must not be below {low}_warning{unit} ({warning:g})"
                raise PydanticCustomError("keyed", "{reason}", {"key": f"{low}_critical{unit}", "reason": reason})
        return self

    def every_minutes(self, stream: str) -> float:
        """How often ``stream`` is expected to sync."""
        return self.stream_every_minutes.get(stream, self.sync_every_minutes)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "text"] = "auto"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Config(_Section):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    servicetitan: ServiceTitanConfig = Field(default_factory=ServiceTitanConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    ghl: GhlConfig = Field(default_factory=GhlConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


SECTIONS: dict[str, type[_Section]] = {
    name: info.annotation  # type: ignore[misc]
    for name, info in Config.model_fields.items()
}


def _keys(section: str) -> set[str]:
    return set(SECTIONS[section].model_fields)


def _fail(message: str) -> ConfigError:
    return ConfigError(f"config error: {message}")


# --- sources ---------------------------------------------------------------------------------


class _Layer:
    """Raw values ``{"section.key": value}`` with where each came from."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}

    def set(self, key: str, value: Any, source: str) -> None:
        self.values[key] = value
        self.sources[key] = source


def _resolve_key(section: str, key: str, value: Any, *, where: str, source: str, layer: _Layer) -> None:
    """Place one raw key (possibly ``<secret>_file``) into the layer, or fail naming it."""
    dotted = f"{section}.{key}"
    if section not in SECTIONS:
        raise _fail(f"unknown section '{section}' in {where}")
    if key in _keys(section):
        if dotted in layer.sources and layer.sources[dotted].endswith("_file"):
            raise _fail(f"both '{dotted}' and '{dotted}_file' are set in {where}")
        layer.set(dotted, value, source)
        return
    if key.endswith("_file") and f"{section}.{key[:-5]}" in SECRET_KEYS:
        base = f"{section}.{key[:-5]}"
        if base in layer.values:
            raise _fail(f"both '{base}' and '{dotted}' are set in {where}")
        # The source ends in "_file": a later plain key in the same layer is then caught above.
        layer.set(base, _read_secret_file(Path(str(value)), dotted), f"{source} via {key}")
        return
    raise _fail(f"unknown key '{dotted}' in {where}")


def _read_secret_file(path: Path, key: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"'{key}': cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    return text.rstrip("\r\n")


def read_yaml(path: Path, fail: Callable[[str], Exception], what: str = "file") -> Any:
    """The YAML document in ``path``; ``fail(message)`` is raised, naming the path (and the line), when it cannot
    be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise fail(f"{what} {path} not found") from None
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    import yaml  # only runs that read a YAML file pay for importing it

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise fail(f"{path}{at}: {problem}") from None


def _yaml_layer(path: Path) -> _Layer:
    doc = read_yaml(path, _fail, "config file")
    layer = _Layer()
    if doc is None:
        return layer
    if not isinstance(doc, dict):
        raise _fail(f"{path}: expected a mapping of sections (database:, servicetitan:, …)")
    for section, body in doc.items():
        if str(section) not in SECTIONS:
            raise _fail(f"unknown key '{section}' in {path}")
        if body is None:
            continue
        if not isinstance(body, dict):
            raise _fail(f"'{section}' in {path} must be a mapping of keys")
        for key, value in body.items():
            _resolve_key(str(section), str(key), value, where=str(path), source=f"file {path}", layer=layer)
    return layer


def _credentials_layer(env: Mapping[str, str]) -> _Layer:
    """systemd ``LoadCredential=``: files named after the secret key in $CREDENTIALS_DIRECTORY."""
    layer = _Layer()
    directory = env.get("CREDENTIALS_DIRECTORY")
    if not directory:
        return layer
    for key in sorted(SECRET_KEYS):
        path = Path(directory) / key
        if path.is_file():
            layer.set(key, _read_secret_file(path, key), f"credential {key}")
    return layer


# Keys whose environment value is a comma-separated list.
_LISTS = ("streams_include", "streams_exclude", "protected_stages", "install_units", "install_unit_ids")


def _env_layer(env: Mapping[str, str]) -> _Layer:
    layer = _Layer()
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue  # STSYNC_CONFIG, STSYNC_PG_BINDIR…: not config keys
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        value: Any = env[name]
        if section in SECTIONS and key in _LISTS:
            value = [s.strip() for s in str(value).split(",") if s.strip()]
        _resolve_key(section, key, value, where=f"environment variable {name}", source=f"env {name}", layer=layer)
    return layer


# --- loading ----------------------------------------------------------------------------------


def explain_config(path: Path | None, env: Mapping[str, str] | None = None) -> tuple[Config, dict[str, str]]:
    """Load and validate the configuration; also return ``{"section.key": source}`` for every value set."""
    env = os.environ if env is None else env
    if path is None and env.get("STSYNC_CONFIG"):
        path = Path(env["STSYNC_CONFIG"])
    layers = [_yaml_layer(path)] if path is not None else []
    layers += [_credentials_layer(env), _env_layer(env)]
    raw: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    for layer in layers:
        for dotted, value in layer.values.items():
            section, key = dotted.split(".", 1)
            raw.setdefault(section, {})[key] = value
            sources[dotted] = layer.sources[dotted]
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise _validation_error(exc, sources) from None
    return config, sources


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> Config:
    """The effective configuration (``path`` or $STSYNC_CONFIG, then overrides from ``env``/os.environ)."""
    return explain_config(path, env)[0]


def _dotted(loc: tuple[int | str, ...]) -> str:
    """``('ghl', 'business_units', 2, 'pipline')`` as ``ghl.business_units[2].pipline``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _validation_error(exc: ValidationError, sources: Mapping[str, str]) -> ConfigError:
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = tuple(err["loc"])
    if err["type"] in ("url", "keyed"):  # raised by a section's own validator: the key is in the context
        loc = (*loc, *str((err.get("ctx") or {}).get("key")).split("."))
    dotted = _dotted(loc)
    where = sources.get(".".join(str(p) for p in loc[:2]))
    if err["type"] == "extra_forbidden":
        return _fail(f"unknown key '{dotted}'" + (f" in {where}" if where else ""))
    # pydantic messages never contain the input (include_input=False), so secrets stay out.
    message = str(err["msg"]).removeprefix("Value error, ")
    return _fail(f"bad value for '{dotted}'" + (f" ({where})" if where else "") + f": {message}")


# --- presentation -----------------------------------------------------------------------------


def _shown(item: Any) -> Any:
    if not isinstance(item, BaseModel):
        return item
    values = item.model_dump()
    if "webhook_url" in values:
        values["webhook_url"] = mask_webhook(values["webhook_url"])
    return values


def effective_values(config: Config) -> dict[str, dict[str, Any]]:
    """Every key's value as plain data, secrets masked (for `config show`)."""
    out: dict[str, dict[str, Any]] = {}
    for section, model_type in SECTIONS.items():
        values: dict[str, Any] = {}
        model = getattr(config, section)
        for key in model_type.model_fields:
            value = getattr(model, key)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                value = mask_dsn(secret, conninfo=True) if f"{section}.{key}" == "database.url" else MASK
            elif isinstance(value, tuple):
                value = [_shown(v) for v in value]
            elif isinstance(value, dict):
                value = {k: _shown(v) for k, v in value.items()}
            values[key] = value
        if section == "servicetitan":
            values["api_base_url"] = values["api_base_url"] or config.servicetitan.api_base()
            values["auth_url"] = values["auth_url"] or config.servicetitan.auth_base()
            cache = config.servicetitan.token_cache_path()
            values["token_cache_dir"] = str(cache) if cache is not None else None
        out[section] = values
    return out


def required_secret(value: SecretStr | None, key: str) -> str:
    """A secret's value, or ConfigError naming the key and every place it may come from."""
    if value is None or not value.get_secret_value():
        section, name = key.split(".", 1)
        raise ConfigError(
            f"missing secret '{key}': set it in the config file ({name} or {name}_file under {section}:), "
            f"in {ENV_PREFIX}{section.upper()}__{name.upper()}[_FILE], "
            f"or as systemd credential '{key}' ($CREDENTIALS_DIRECTORY)"
        )
    return value.get_secret_value()
