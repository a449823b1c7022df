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

import ipaddress
import os
import re
import ssl
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

ENV_PREFIX = "NEWSMON_"

#: The longest period any setting may name (intervals, windows, leases, waits). A year is far
#: beyond any sensible value, and the bound keeps date arithmetic (``now + period``) inside
#: datetime's range and SQLite's 64-bit integers: without it, 10**20 passed the check and
#: crashed the run with OverflowError.
MAX_PERIOD_S = 366 * 24 * 3600


class ConfigError(Exception):
    """A config file is missing, unreadable or invalid. ``str()`` is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    # Attribute docstrings become field descriptions: docs/settings.md is generated from them.
    # No inf/nan: `.inf` is valid YAML and passes `gt=0`, but no timeout or threshold means it.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True,
                              allow_inf_nan=False)


# --- single values: what the clients that take them accept ---------------------------------

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")
_PORT = re.compile(r"^[0-9]{1,5}$")  # ASCII digits only: int() also takes "٣"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def host_problem(host: str) -> str | None:
    """Why ``host`` is not a host name (ASCII, punycode for others), an IPv4 address or an
    IPv6 address without brackets; None when it is one."""
    if not host:
        return "no host"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is allowed
        return None
    except ValueError:
        pass
    if ":" in host:
        return f"{host!r} is neither a host name nor an IPv6 address"
    if len(host) > 253 or not _HOST_NAME.match(host):
        return f"{host!r} is not a host name (letters, digits, '-', '.'; punycode for others)"
    if host.rstrip(".").rsplit(".", 1)[-1].isdigit():
        return f"{host!r} is not an IPv4 address"
    return None


def port_problem(port: str) -> str | None:
    if not _PORT.match(port) or not 1 <= int(port) <= 65535:
        return f"port {port!r} is not a number from 1 to 65535"
    return None


def http_url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL with a valid host and port; None if it is."""
    if not url or _CONTROL.search(url) or any(c.isspace() for c in url):
        return "must be an http:// or https:// URL, without spaces"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # an unclosed or invalid IPv6 bracket, a port that is no number
        return f"not a valid URL: {exc}"
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return "must be an http:// or https:// URL with a host, like https://example.org"
    problem = host_problem(parts.hostname or "")
    if problem:
        return problem
    if port == 0:
        return "port 0 is not a port (1 to 65535)"
    return None


def host_port_problem(address: str) -> str | None:
    """Why ``address`` is not ``host:port`` (``[v6 address]:port`` for IPv6); None if it is."""
    if address.startswith("["):
        inner, bracket, rest = address[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return f"{address!r} is not [IPv6 address]:port"
        host, port = inner, rest[1:]
        if ":" not in host:
            return f"{address!r}: brackets are only for IPv6 addresses"
    else:
        host, colon, port = address.rpartition(":")
        if not colon:
            return f"{address!r} has no port (host:port, like 127.0.0.1:9092)"
        if ":" in host:
            return f"{address!r}: an IPv6 address needs brackets, like [::1]:9092"
    return host_problem(host) or port_problem(port)


def _checked(problem: str | None, value: str) -> str:
    if problem:
        raise ValueError(problem)
    return value


# --- main settings (config/newsmon.yaml) -------------------------------------------------


#: What Kafka accepts as a topic name.
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


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
            _checked(host_port_problem(broker) if broker else "an empty entry", value)
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
        if value is not None and (not value or _CONTROL.search(value)):
            raise ValueError("must be a non-empty name without control characters")
        return value

    def problems(self) -> list[str]:
        """Security settings that do not go together, as ``kafka.<key>: problem`` lines.

        Checked by every command (pipeline/cli.py) rather than by the model, so that each
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


class SearchSettings(_Strict):
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
        return _checked(http_url_problem(value), value)

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


class Settings(_Strict):
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
    log_format: Literal["text", "json"] = "text"
    """Log lines as text or as one JSON object per line (`--log-format` wins)."""

    def problems(self) -> list[str]:
        """Settings that are valid one by one but do not go together."""
        return self.kafka.problems() + self.search.problems()


# --- alert rules (config/alerts.yaml) -----------------------------------------------------


class ChannelConfig(_Strict):
    """How alerts reach people: looked up by ``type`` in notify.py.

    Secrets (a webhook token, the SMTP password, the Telegram bot token) are never written
    here: ``secret_env`` names the environment variable that holds them.
    """

    type: Literal["console", "webhook", "slack", "smtp", "telegram"]
    #: webhook / slack: where to POST. telegram: the Bot API base URL.
    url: str | None = None
    #: Name of the environment variable holding this channel's secret (token, password).
    secret_env: str | None = None
    #: smtp: recipients, sender, server, login name; ``tls`` is starttls, ssl or none.
    to: tuple[str, ...] = ()
    sender: str | None = None
    host: str | None = None
    port: int | None = Field(default=None, gt=0, lt=65536)
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    #: telegram: the chat (``@channelname`` or a numeric id) the bot writes to.
    chat_id: str | None = None
    #: One request's time limit, and how many tries one delivery gets before the alert is
    #: left pending for the next run: together they bound how long a dead channel can hold
    #: up the pipeline.
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    attempts: int = Field(default=3, ge=1, le=10)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _checked(http_url_problem(value), value)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        return None if value is None else _checked(host_problem(value), value)

    @field_validator("secret_env")
    @classmethod
    def _variable(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
            raise ValueError("must be the name of an environment variable, like NEWSMON_TOKEN")
        return value

    @field_validator("sender", "to")
    @classmethod
    def _addresses(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        # One bare address each: a newline would be a header of its own (injection), and a
        # name or a list in one entry is refused by the server only at delivery time.
        for address in (value,) if isinstance(value, str) else value or ():
            local, at, domain = address.rpartition("@")
            if (not at or not local or _CONTROL.search(address) or " " in address
                    or "," in address or host_problem(domain)):
                raise ValueError(f"{address!r} is not an e-mail address (user@example.org)")
        return value

    @field_validator("chat_id")
    @classmethod
    def _chat(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-?[0-9]{1,20})$",
                                              value):
            raise ValueError("must be @channelname or a numeric chat id")
        return value

    @model_validator(mode="after")
    def _complete(self) -> ChannelConfig:
        needs: dict[str, tuple[str, ...]] = {
            "webhook": ("url",), "slack": ("url",), "smtp": ("host", "sender", "to"),
            "telegram": ("chat_id", "secret_env"),
        }
        missing = [f for f in needs.get(self.type, ()) if not getattr(self, f)]
        if missing:
            raise ValueError(f"a {self.type} channel needs {', '.join(missing)}")
        return self


class _RuleBase(_Strict):
    name: str
    topic: str
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    channels: tuple[str, ...] = ("console",)
    #: At most one delivery per channel per window of this many seconds (0: no throttle);
    #: alerts held back are kept on the alert and the window's throttle document.
    throttle_s: int = Field(default=0, ge=0, le=MAX_PERIOD_S)


class AlertRule(_RuleBase):
    """A story alert: the first article of a story whose topic score reaches ``threshold``."""

    threshold: float = Field(default=1.0, ge=0)


class SurgeRule(_RuleBase):
    """A surge alert: a topic's article count in the current interval against its baseline,
    the mean and standard deviation of the ``baseline_intervals`` intervals before it."""

    interval_s: int = Field(default=3600, ge=60, le=MAX_PERIOD_S // 24)
    baseline_intervals: int = Field(default=24, ge=2, le=24 * 30)
    #: How many standard deviations above the mean count as a surge.
    k: float = Field(default=3.0, ge=0)
    #: Never alert below this many articles in the interval, whatever the baseline.
    min_count: int = Field(default=5, ge=1)


class AlertsConfig(_Strict):
    channels: dict[str, ChannelConfig] = {"console": ChannelConfig(type="console")}
    rules: tuple[AlertRule, ...] = ()
    surges: tuple[SurgeRule, ...] = ()
    #: A delivery still failing this long after the alert was raised is given up (recorded).
    give_up_after_s: int = Field(default=24 * 3600, gt=0, le=MAX_PERIOD_S)
    #: After a failed delivery, the channel is not tried again for this alert sooner than this
    #: (the end-of-run sweep right after a failure would only fail again).
    retry_after_s: int = Field(default=60, ge=0, le=MAX_PERIOD_S)
    #: How long a deliverer holds an alert before another may take it over (a crash between
    #: sending and recording then means one repeated message, never a lost one).
    lease_s: int = Field(default=300, gt=0, le=MAX_PERIOD_S)

    @model_validator(mode="after")
    def _consistent(self) -> AlertsConfig:
        # One "dotted.key: problem" per line: config.validate reports them under their keys.
        problems = []
        first: dict[str, str] = {}
        for key, rule in self.keyed_rules():
            if rule.name in first:
                problems.append(f"{key}.name: rule names must be unique: {rule.name} "
                                f"(first at {first[rule.name]})")
            first.setdefault(rule.name, key)
            unknown = [c for c in rule.channels if c not in self.channels]
            if unknown:
                problems.append(f"{key}.channels: unknown channel {', '.join(unknown)} "
                                f"(rule {rule.name}; channels are: {', '.join(self.channels)})")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def keyed_rules(self) -> list[tuple[str, AlertRule | SurgeRule]]:
        """Every rule with its dotted key in the file (``rules.0``, ``surges.1``)."""
        keyed: list[tuple[str, AlertRule | SurgeRule]] = [
            (f"rules.{i}", r) for i, r in enumerate(self.rules)]
        keyed += [(f"surges.{i}", r) for i, r in enumerate(self.surges)]
        return keyed

    def rule(self, name: str) -> AlertRule | SurgeRule | None:
        for rule in self.rules:
            if rule.name == name:
                return rule
        return next((r for r in self.surges if r.name == name), None)


# --- loading -------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping: YAML would silently keep
    the last value, so an operator editing the first one would see no effect."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable: the base class reports it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: where (line, column) and what, without PyYAML's multi-line excerpt."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = " ".join(str(part) for part in (getattr(exc, "context", None),
                                           getattr(exc, "problem", None)) if part)
    return where + " ".join((what or str(exc)).split())


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        hint = ""
        if not path.is_absolute() and not path.exists():
            # The usual cause: a command run outside the repository, where ./config is not.
            hint = f" (looked in {Path.cwd()}; set NEWSMON_CONFIG_DIR or pass --config)"
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}{hint}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text: byte {exc.object[exc.start]:#04x} at "
                           f"offset {exc.start}"]) from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader) or {}  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {_yaml_problem(exc)}"]) from exc


def validate(
    model: type[M],
    data: Any,
    origin: Path | str,
    *,
    origin_of: Callable[[tuple[str | int, ...]], str | None] | None = None,
) -> M:
    """Validate ``data`` into ``model``; errors name ``origin`` and the dotted key.

    ``origin_of(loc)`` may name another origin for one key (an environment variable). A
    model validator that checks several keys at once names them itself: its message is one
    ``dotted.key: problem`` per line, reported as they are.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            where = (origin_of(loc) if origin_of else None) or str(origin)
            if not loc and err["type"] == "value_error":
                problems.extend(f"{where}: {line}" for line in message.splitlines())
            else:
                problems.append(f"{where}: {'.'.join(map(str, loc)) or '(top level)'}: {message}")
        raise ConfigError(problems) from exc


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


def _state_dir_problem(directory: Path) -> str | None:
    """Why a run could not create or write ``directory``; None when it can."""
    probe = directory.absolute()
    while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
        probe = probe.parent  # the nearest part that exists: mkdir -p starts there
    if not probe.is_dir():
        return f"{probe} is not a directory" + (f" (so {directory} cannot be one)"
                                                 if probe != directory.absolute() else "")
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable by this user" + (
            f" (to create {directory} in it)" if probe != directory.absolute() else "")
    return None


def _file_problem(path: str, *, ca: bool = False) -> str | None:
    """Why a run could not read the file at ``path``; None when it can.

    ``ca``: also load it the way the TLS clients do, so a file that is there but holds no
    certificate is found now, not at connect time.
    """
    file = Path(path)
    if not file.exists():
        return f"{path}: no such file"
    if not file.is_file():
        return f"{path} is not a file"
    if not os.access(file, os.R_OK):
        return f"{path} is not readable by this user"
    if ca:
        try:
            ssl.create_default_context(cafile=path)
        except (ssl.SSLError, ValueError) as exc:
            return f"{path} is not a PEM CA bundle ({getattr(exc, 'reason', None) or exc})"
    return None


def _key_pair_problem(certfile: str, keyfile: str) -> str | None:
    """Why the client certificate and key cannot be loaded (a key with a passphrase cannot:
    no setting gives one, and OpenSSL would ask for it on the terminal)."""
    try:
        ssl.create_default_context().load_cert_chain(certfile, keyfile, password=lambda: b"")
    except (ssl.SSLError, ValueError) as exc:
        return (f"{certfile} and {keyfile} are not a PEM certificate and its unencrypted key "
                f"({getattr(exc, 'reason', None) or exc})")
    return None


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

    add(("state_dir",), _state_dir_problem(settings.state_dir))
    kafka, search = settings.kafka, settings.search
    if kafka.ssl_cafile:
        add(("kafka", "ssl_cafile"), _file_problem(kafka.ssl_cafile, ca=True))
    if search.ca_certs:
        add(("search", "ca_certs"), _file_problem(search.ca_certs, ca=True))
    pair = [(name, getattr(kafka, name)) for name in ("ssl_certfile", "ssl_keyfile")]
    given = [(name, _file_problem(value)) for name, value in pair if value]
    for name, problem in given:
        add(("kafka", name), problem)
    if len(given) == 2 and not any(problem for _, problem in given):
        add(("kafka", "ssl_certfile"), _key_pair_problem(kafka.ssl_certfile or "",
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


def unknown_alert_topics(alerts: AlertsConfig, topics: Iterable[str], path: Path) -> list[str]:
    """Alert rules for a topic the rule file does not define (they could never fire)."""
    known = set(topics)
    return [f"{path}: {key}.topic: unknown topic {rule.topic!r} (topics are: "
            f"{', '.join(sorted(known))})" for key, rule in alerts.keyed_rules()
            if rule.topic not in known]


def load_model(model: type[M], path: Path) -> M:
    return validate(model, read_yaml(path), path)
