"""Loads config/*.yaml into typed models, validated once and passed down.

Unknown keys are rejected. Every error names the file and the dotted key, one line each, so an
operator can fix a config without reading a traceback. Settings may also come from the
environment as ``NEWSMON_<SECTION>__<KEY>`` (for example ``NEWSMON_SEARCH__URL``), which wins
over the YAML; secrets come only from the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

ENV_PREFIX = "NEWSMON_"


class ConfigError(Exception):
    """A config file is missing, unreadable or invalid. ``str()`` is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    # Attribute docstrings become field descriptions: docs/settings.md is generated from them.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


# --- main settings (config/newsmon.yaml) -------------------------------------------------


class KafkaSettings(_Strict):
    bootstrap_servers: str = "127.0.0.1:9092"
    """Brokers, `host:port` separated by commas."""
    raw_topic: str = "newsmon.raw-items"
    """Topic the pollers publish raw items to (key: source id)."""
    dead_letter_topic: str = "newsmon.dead-letters"
    """Topic the pipeline sends dead letters to (besides the dead-letter index)."""
    group_id: str = "newsmon-pipeline"
    """Consumer group of the pipeline; its committed offsets are what has been processed."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How clients talk to the brokers."""
    sasl_mechanism: str | None = None
    """SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) when the protocol is SASL_*."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: SecretStr | None = None
    """SASL password. Secret: only from the environment."""
    request_timeout_ms: int = Field(default=30_000, gt=0)
    """How long a client waits for a broker's answer."""


class SearchSettings(_Strict):
    backend: Literal["embedded", "elasticsearch", "opensearch"] = "embedded"
    """Where documents go: a search server, or `embedded` (SQLite in state_dir, no server)."""
    url: str = "http://127.0.0.1:9200"
    """The search server's URL."""
    index_prefix: str = "newsmon"
    """Indices are `<prefix>-articles`, `<prefix>-alerts`, `<prefix>-dead-letters`."""
    username: str | None = None
    """User for Basic authentication (with the password)."""
    password: SecretStr | None = None
    """Password for Basic authentication. Secret: only from the environment."""
    api_key: SecretStr | None = None
    """API key (the encoded form), preferred to a password. Secret: only from the environment."""
    verify_certs: bool = True
    """Verify the server's TLS certificate."""
    ca_certs: str | None = None
    """CA bundle (PEM file) that signed the server's certificate."""
    request_timeout_s: float = Field(default=30.0, gt=0)
    """How long one request may take."""
    bulk_batch_size: int = Field(default=500, gt=0)
    """Documents per bulk request, and per batch of the batched pipeline stages."""
    max_retries: int = Field(default=5, ge=0)
    """Retries of a throttled (429) bulk document, with capped backoff."""

    @field_validator("index_prefix")
    @classmethod
    def _lowercase(cls, value: str) -> str:
        if value != value.lower() or not value:
            raise ValueError("must be non-empty lower case (a search-server index name)")
        return value


class Settings(_Strict):
    """Everything a run needs, with paths resolved against the config directory."""

    state_dir: Path = Path(".newsmon")
    """Writable state: connector cursors and seen items, the embedded store. Relative to the
    working directory."""
    feeds: Path = Path("feeds.yaml")
    """Source list; relative to the directory of newsmon.yaml."""
    topics: Path = Path("topics.yaml")
    """Topic rules; relative to the directory of newsmon.yaml."""
    alerts: Path = Path("alerts.yaml")
    """Alert rules and channels; relative to the directory of newsmon.yaml."""
    kafka: KafkaSettings = KafkaSettings()
    search: SearchSettings = SearchSettings()
    log_format: Literal["text", "json"] = "text"
    """Log lines as text or as one JSON object per line (`--log-format` wins)."""


# --- alert rules (config/alerts.yaml) -----------------------------------------------------


class ChannelConfig(_Strict):
    type: Literal["console", "webhook", "slack", "smtp", "telegram"]
    url: str | None = None
    #: Name of the environment variable holding this channel's secret (token, password).
    secret_env: str | None = None
    to: tuple[str, ...] = ()
    sender: str | None = None
    chat_id: str | None = None


class AlertRule(_Strict):
    name: str
    topic: str
    threshold: float = Field(default=1.0, ge=0)
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    channels: tuple[str, ...] = ("console",)
    throttle_s: int = Field(default=0, ge=0)


class AlertsConfig(_Strict):
    channels: dict[str, ChannelConfig] = {"console": ChannelConfig(type="console")}
    rules: tuple[AlertRule, ...] = ()


# --- loading -------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}".replace("\n", " ")]) from exc


def validate(model: type[M], data: Any, origin: Path | str) -> M:
    """Validate ``data`` into ``model``; errors name ``origin`` and the dotted key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [
                f"{origin}: {'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                for err in exc.errors()
            ]
        ) from exc


def env_overrides(environ: Mapping[str, str], prefix: str = ENV_PREFIX) -> dict[str, Any]:
    """``NEWSMON_SEARCH__URL=x`` -> ``{"search": {"url": "x"}}``."""
    out: dict[str, Any] = {}
    for key, value in environ.items():
        name = key[len(prefix) :].lower()
        if not key.startswith(prefix) or ("__" not in key and name not in Settings.model_fields):
            continue
        parts = name.split("__")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def default_config_dir() -> Path:
    return Path(os.environ.get("NEWSMON_CONFIG_DIR", "config"))


def load_settings(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read ``newsmon.yaml`` (if present), overlay the environment, resolve relative paths.

    The rule, feed and alert files are relative to the directory holding ``newsmon.yaml``, so a
    config directory can be moved as a whole (a ConfigMap, say); ``state_dir`` is relative to
    the working directory, where operators expect writable state.
    """
    environ = os.environ if environ is None else environ
    path = path or default_config_dir() / "newsmon.yaml"
    data: dict[str, Any] = {}
    if path.exists():
        loaded = read_yaml(path)
        if not isinstance(loaded, dict):
            raise ConfigError([f"{path}: (top level): must be a mapping"])
        data = loaded
    for secret in ("password", "api_key", "sasl_password"):
        for section in ("search", "kafka"):
            if secret in (data.get(section) or {}):
                raise ConfigError(
                    [
                        f"{path}: {section}.{secret}: secrets are read only from the environment"
                        f" ({ENV_PREFIX}{section.upper()}__{secret.upper()})"
                    ]
                )
    data = _merge(data, env_overrides(environ))
    settings = validate(Settings, data, path)
    base = path.parent
    return settings.model_copy(
        update={
            name: getattr(settings, name)
            if getattr(settings, name).is_absolute()
            else base / getattr(settings, name)
            for name in ("feeds", "topics", "alerts")
        }
    )


def load_model(model: type[M], path: Path) -> M:
    return validate(model, read_yaml(path), path)
