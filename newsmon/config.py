"""Loads config/*.yaml into typed models, validated once and passed down.

Unknown keys are rejected. Every error names the file and the dotted key, one line each, so an
operator can fix a config without reading a traceback. Settings may also come from the
environment as ``NEWSMON_<SECTION>__<KEY>`` (for example ``NEWSMON_SEARCH__URL``), which wins
over the YAML; secrets come only from the environment.

A config that loads is a config a run can use: every URL, ``host:port``, name and number is
checked for what the client that takes it accepts (the models' validators), and every path a
run opens is checked on disk when a command loads it (:func:`load_checked_settings`). A value
that passes here and crashes a command later is a bug of this module.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

from newsmon.configfile import ConfigError, read_yaml, validate
from newsmon.values import (
    CONTROL,
    checked,
    file_problem,
    host_port_problem,
    http_url_problem,
    key_pair_problem,
    state_dir_problem,
)

ENV_PREFIX = "NEWSMON_"

#: The longest period any setting may name (intervals, windows, leases, waits). A year is far
#: beyond any sensible value, and the bound keeps date arithmetic (``now + period``) inside
#: datetime's range and SQLite's 64-bit integers: without it, 10**20 passed the check and
#: crashed the run with OverflowError.
MAX_PERIOD_S = 366 * 24 * 3600


class StrictModel(BaseModel):
    """The base of every config model: unknown keys rejected, frozen, finite numbers."""

    # Attribute docstrings become field descriptions: docs/settings.md is generated from them.
    # No inf/nan: `.inf` is valid YAML and passes `gt=0`, but no timeout or threshold means it.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True,
                              allow_inf_nan=False)


# --- main settings (config/newsmon.yaml) -------------------------------------------------


#: What Kafka accepts as a topic name.
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class KafkaSettings(StrictModel):
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
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    """SASL mechanism when the protocol is SASL_* (the ones a user name and password are
    enough for)."""
    sasl_username: str | None = None
    """SASL user name."""
    sasl_password: SecretStr | None = None
    """SASL password. Secret: only from the environment."""
    ssl_cafile: str | None = None
    """CA bundle (PEM) that signed the brokers' certificates, for SSL and SASL_SSL (default:
    the system's trust store)."""
    ssl_certfile: str | None = None
    """Client certificate (PEM) for brokers that authenticate clients by certificate."""
    ssl_keyfile: str | None = None
    """Private key (PEM) of the client certificate."""
    ssl_check_hostname: bool = True
    """Check that the broker's certificate names the host connected to."""
    request_timeout_ms: int = Field(default=30_000, gt=500, lt=540_000)
    """How long a client waits for a broker's answer. kafka-python's consumer refuses one at
    or below its fetch wait (500 ms) or at or above its idle-connection limit (9 min)."""

    @field_validator("bootstrap_servers")
    @classmethod
    def _brokers(cls, value: str) -> str:
        brokers = [b.strip() for b in value.split(",")]
        for broker in brokers:
            checked(host_port_problem(broker) if broker else "an empty entry", value)
        return ",".join(brokers)

    @field_validator("raw_topic", "dead_letter_topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not _TOPIC.match(value) or value in (".", ".."):
            raise ValueError("a Kafka topic name is 1-249 of A-Z a-z 0-9 . _ -")
        return value

    @field_validator("group_id", "sasl_username")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and (not value or CONTROL.search(value)):
            raise ValueError("must be a non-empty name without control characters")
        return value

    def problems(self) -> list[str]:
        """Security settings that do not go together, as ``kafka.<key>: problem`` lines.

        Checked by every command (newsmon/ops/loading.py) rather than by the model, so that each
        setting can still be given, and read back, on its own.
        """
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        found = []
        for name, value in (("sasl_mechanism", self.sasl_mechanism),
                            ("sasl_username", self.sasl_username),
                            ("sasl_password", self.sasl_password)):
            if sasl and value is None:
                source = f" (from {ENV_PREFIX}KAFKA__SASL_PASSWORD)" * (name == "sasl_password")
                found.append(f"kafka.{name}: needed with security_protocol "
                             f"{self.security_protocol}{source}")
        if self.sasl_mechanism and not sasl:
            found.append(f"kafka.sasl_mechanism: set, but security_protocol is "
                         f"{self.security_protocol}, not SASL_PLAINTEXT or SASL_SSL")
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name) and not tls:
                found.append(f"kafka.{name}: set, but security_protocol is "
                             f"{self.security_protocol}, not SSL or SASL_SSL")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile):
            found.append("kafka.ssl_keyfile: ssl_certfile and ssl_keyfile go together")
        return found

    def client_options(self) -> dict[str, Any]:
        """Connection and security options for every kafka-python client newsmon makes
        (poller's producer, pipeline's consumers, dead-letter producer, doctor)."""
        opts: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.sasl_mechanism:
            # kafka-python takes these two for SCRAM as well as for PLAIN.
            opts["sasl_mechanism"] = self.sasl_mechanism
            opts["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                opts["sasl_plain_password"] = self.sasl_password.get_secret_value()
        if self.security_protocol.endswith("SSL"):
            opts["ssl_check_hostname"] = self.ssl_check_hostname
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                if getattr(self, name):
                    opts[name] = getattr(self, name)
        return opts


class SearchSettings(StrictModel):
    backend: Literal["embedded", "elasticsearch", "opensearch"] = "embedded"
    """Where documents go: a search server, or `embedded` (SQLite in state_dir, no server)."""
    url: str = "http://127.0.0.1:9200"
    """The search server's URL."""
    index_prefix: str = "newsmon"
    """Articles go to `<prefix>-articles-YYYY.MM` behind the alias `<prefix>-articles`; alerts,
    dead letters, source health and alert throttles to `<prefix>-<kind>`."""
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
    request_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    """How long one request may take."""
    bulk_batch_size: int = Field(default=500, gt=0, le=100_000)
    """Documents per bulk request, and per batch of the batched pipeline stages."""
    max_retries: int = Field(default=5, ge=0, le=100)
    """Retries of a bulk document the server could not take (429, 5xx), with capped backoff;
    still failing after them, the run fails and is retried."""
    unavailable_wait_s: float = Field(default=0.0, ge=0, le=MAX_PERIOD_S)
    """When the server cannot be reached: 0 fails the run at once (offsets not committed, the
    next run repeats it); more waits up to this many seconds for it to come back, retrying
    with capped backoff, and the run goes on."""
    language_subfields: bool = True
    """Index `title` and `text` also with each language analyzer the server has (`text.de`...).
    Better recall per language, about three times the indexing work with six analyzers."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return checked(http_url_problem(value), value)

    @field_validator("index_prefix")
    @classmethod
    def _lowercase(cls, value: str) -> str:
        # What both servers accept in an index name, minus the characters they deprecate.
        if not re.match(r"^[a-z0-9][a-z0-9._-]{0,99}$", value):
            raise ValueError("must be a search-server index name: 1-100 lower-case letters, "
                             "digits, '.', '_', '-', starting with a letter or digit")
        return value

    def problems(self) -> list[str]:
        """Settings that do not go together, as ``search.<key>: problem`` lines (checked by
        every command, like KafkaSettings.problems)."""
        found = []
        parts = urlsplit(self.url)  # a valid URL: checked by _url
        if self.ca_certs and parts.scheme != "https":
            found.append("search.ca_certs: a CA bundle is given, but search.url is not https://")
        if self.backend == "elasticsearch" and parts.scheme == "http" and parts.port is None:
            # opensearch-py takes 9200 then; the elasticsearch client refuses the URL.
            found.append("search.url: give the port, like http://host:9200 (the elasticsearch "
                         "client takes no http:// URL without one)")
        return found


#: What a shard group or member name may be: it goes into Kafka group, transactional and
#: file names.
_SHARD_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class PollerSettings(StrictModel):
    """Pollers sharing the sources (`newsmon poll --shard-group NAME`, docs/scaling.md)."""

    shard_group: str | None = None
    """Share the sources with the other pollers of this group (Kafka group membership);
    unset: this poller polls every source."""
    shard_member: str | None = None
    """This poller's name in its group, unique per group (default: the host name). It names
    its state file and its Kafka transactions: a member restarted under its name fences off
    its dead self at once."""
    shard_partitions: int = Field(default=60, ge=1, le=10_000)
    """Shards the sources fall into (partitions of the control and seen-marks topics). Fixed
    once the topics exist: every poller of a group must agree on it."""
    shard_session_timeout_ms: int = Field(default=10_000, ge=6_000, le=300_000)
    """A poller silent this long is dead to its group: its shards move to the others."""
    shard_transaction_timeout_ms: int = Field(default=10_000, ge=1_000, le=900_000)
    """The broker aborts a dead poller's open publish after this long (its items are never
    read, the new owner publishes them again)."""

    @field_validator("shard_group", "shard_member")
    @classmethod
    def _shard_name(cls, value: str | None) -> str | None:
        if value is not None and not _SHARD_NAME.match(value):
            raise ValueError("a shard name is 1-100 of A-Z a-z 0-9 . _ -")
        return value


class Settings(StrictModel):
    """Everything a run needs, with paths resolved against the config directory."""

    state_dir: Path = Path(".newsmon")
    """Writable state: connector cursors and seen items, the embedded store. Relative to the
    working directory."""
    feeds: Path = Path("feeds.yaml")
    """Source list; relative to the directory of newsmon.yaml."""
    topics: Path = Path("topics.yaml")
    """Topic rules; relative to the directory of newsmon.yaml. Their terms are in the directory
    the file names (`terms: terms`: `terms/<lang>.yaml` beside it)."""
    alerts: Path = Path("alerts.yaml")
    """Alert rules and channels; relative to the directory of newsmon.yaml."""
    kafka: KafkaSettings = KafkaSettings()
    search: SearchSettings = SearchSettings()
    poller: PollerSettings = PollerSettings()
    log_format: Literal["text", "json"] = "text"
    """Log lines as text or as one JSON object per line (`--log-format` wins)."""

    def problems(self) -> list[str]:
        """Settings that are valid one by one but do not go together."""
        return self.kafka.problems() + self.search.problems()



# --- loading -------------------------------------------------------------------------------

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


def shipped_config_dir() -> Path:
    """The configuration newsmon ships, config/: package data of an installed wheel (package
    ``newsmon.shipped``, mapped to the folder in pyproject.toml), so ``newsmon run --demo``
    works wherever newsmon is installed; in a checkout, the folder itself."""
    spec = importlib.util.find_spec("newsmon.shipped")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parent.parent / "config"


def default_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("NEWSMON_CONFIG_DIR", "config"))


def _env_origin(overrides: Mapping[str, Any], loc: tuple[str | int, ...]) -> str | None:
    """``environment NEWSMON_SEARCH__URL`` when the key at ``loc`` came from the environment."""
    node: Any = overrides
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, dict):
        return None  # a section: its keys may come from the file as well
    return f"environment {ENV_PREFIX}{'__'.join(str(p) for p in loc).upper()}"


def load_settings(
    path: Path | None = None, environ: Mapping[str, str] | None = None, *,
    required: bool = False,
) -> Settings:
    """Read ``newsmon.yaml`` (if present), overlay the environment, resolve relative paths.

    ``required``: the file was named by the operator (``--config``), so a missing one is an
    error rather than the defaults. The rule, feed and alert files are relative to the
    directory holding ``newsmon.yaml``, so a config directory can be moved as a whole (a
    ConfigMap, say); ``state_dir`` is relative to the working directory, where operators
    expect writable state.
    """
    environ = os.environ if environ is None else environ
    path = path or default_config_dir(environ) / "newsmon.yaml"
    data: dict[str, Any] = {}
    if required and not path.is_file():
        what = "is a directory, not the settings file" if path.is_dir() else "no such file"
        raise ConfigError([f"{path}: {what} (named by --config)"])
    if path.exists():
        loaded = read_yaml(path)
        if not isinstance(loaded, dict):
            raise ConfigError([f"{path}: (top level): must be a mapping"])
        data = loaded
    for secret in ("password", "api_key", "sasl_password"):
        for section in ("search", "kafka"):
            values = data.get(section)
            if isinstance(values, dict) and secret in values:
                raise ConfigError(
                    [
                        f"{path}: {section}.{secret}: secrets are read only from the environment"
                        f" ({ENV_PREFIX}{section.upper()}__{secret.upper()})"
                    ]
                )
    overrides = env_overrides(environ)
    data = _merge(data, overrides)
    settings = validate(Settings, data, path, origin_of=lambda loc: _env_origin(overrides, loc))
    base = path.parent
    return settings.model_copy(
        update={
            name: getattr(settings, name)
            if getattr(settings, name).is_absolute()
            else base / getattr(settings, name)
            for name in ("feeds", "topics", "alerts")
        }
    )


def check_settings(
    settings: Settings, path: Path, environ: Mapping[str, str] | None = None
) -> list[str]:
    """What :func:`load_settings` cannot see from the values alone, one line per problem:
    settings that do not go together, and the paths a run opens (CA bundles, certificates,
    the state directory), checked on disk. Each line names its origin: the file, or the
    environment variable the value came from."""
    overrides = env_overrides(os.environ if environ is None else environ)
    found = [f"{path}: {problem}" for problem in settings.problems()]

    def add(loc: tuple[str, ...], problem: str | None) -> None:
        if problem:
            found.append(f"{_env_origin(overrides, loc) or path}: {'.'.join(loc)}: {problem}")

    add(("state_dir",), state_dir_problem(settings.state_dir))
    kafka, search = settings.kafka, settings.search
    if kafka.ssl_cafile:
        add(("kafka", "ssl_cafile"), file_problem(kafka.ssl_cafile, ca=True))
    if search.ca_certs:
        add(("search", "ca_certs"), file_problem(search.ca_certs, ca=True))
    pair = [(name, getattr(kafka, name)) for name in ("ssl_certfile", "ssl_keyfile")]
    given = [(name, file_problem(value)) for name, value in pair if value]
    for name, problem in given:
        add(("kafka", name), problem)
    if len(given) == 2 and not any(problem for _, problem in given):
        add(("kafka", "ssl_certfile"), key_pair_problem(kafka.ssl_certfile or "",
                                                         kafka.ssl_keyfile or ""))
    return found


def load_checked_settings(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """The settings every command runs with: :func:`load_settings` (a file named by
    ``--config`` must exist) plus :func:`check_settings`; raises ConfigError with every
    problem, one line each."""
    environ = os.environ if environ is None else environ
    if path is None and "NEWSMON_CONFIG_DIR" in environ and not default_config_dir(
            environ).is_dir():
        raise ConfigError([f"environment NEWSMON_CONFIG_DIR: {default_config_dir(environ)} is "
                           "not a directory"])
    settings = load_settings(path, environ, required=path is not None)
    problems = check_settings(settings, path or default_config_dir(environ) / "newsmon.yaml",
                              environ)
    if problems:
        raise ConfigError(problems)
    return settings
