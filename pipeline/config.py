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
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- main settings (config/newsmon.yaml) -------------------------------------------------


class KafkaSettings(_Strict):
    bootstrap_servers: str = "127.0.0.1:9092"
    raw_topic: str = "newsmon.raw-items"
    dead_letter_topic: str = "newsmon.dead-letters"
    group_id: str = "newsmon-pipeline"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    #: Only from the environment: NEWSMON_KAFKA__SASL_PASSWORD.
    sasl_password: SecretStr | None = None
    request_timeout_ms: int = Field(default=30_000, gt=0)


class SearchSettings(_Strict):
    backend: Literal["embedded", "elasticsearch", "opensearch"] = "embedded"
    url: str = "http://127.0.0.1:9200"
    index_prefix: str = "newsmon"
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    verify_certs: bool = True
    ca_certs: str | None = None
    request_timeout_s: float = Field(default=30.0, gt=0)
    bulk_batch_size: int = Field(default=500, gt=0)
    max_retries: int = Field(default=5, ge=0)

    @field_validator("index_prefix")
    @classmethod
    def _lowercase(cls, value: str) -> str:
        if value != value.lower() or not value:
            raise ValueError("must be non-empty lower case (a search-server index name)")
        return value


class Settings(_Strict):
    """Everything a run needs, with paths resolved against the config directory."""

    state_dir: Path = Path(".newsmon")
    feeds: Path = Path("feeds.yaml")
    topics: Path = Path("topics.yaml")
    alerts: Path = Path("alerts.yaml")
    kafka: KafkaSettings = KafkaSettings()
    search: SearchSettings = SearchSettings()
    log_format: Literal["text", "json"] = "text"


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
