"""``newsmon doctor``: is this installation able to run? One line per check.

Checks, in order: the configuration (settings, feeds, topics, alert rules), the state
directory, the sources' stored health, Kafka, the search server, and every alert channel's
endpoint. Each finding is ``ok``, ``WARN`` (works, but look) or ``FAIL`` (a run would fail);
a problem's line says what to do about it. Network checks are bounded by a short timeout, so
a stopped service costs seconds, not minutes.

Nothing here writes to a service or sends a message: endpoints are checked for reachability
(a TCP connection; for SMTP the server's greeting), never with a test alert. URLs are shown
as scheme, host and port only, because a webhook URL's path is often its secret.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from newsmon.config import Settings
from newsmon.configfile import ConfigError
from newsmon.connectors.feeds import FeedsConfig
from newsmon.exits import EXIT_CONFIG, EXIT_FAILED, sources_exit
from newsmon.ops.loading import Loaded, load_all
from newsmon.pipeline.alerts.channels import channel_type
from newsmon.pipeline.alerts.channels.base import tcp_problem
from newsmon.pipeline.alerts.config import AlertsConfig, ChannelConfig
from newsmon.pipeline.store.client import search_auth_http
from newsmon.urls import redacted_url

Status = Literal["ok", "warn", "fail"]

#: Seconds for each network check (connect, request).
TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Finding:
    status: Status
    check: str
    message: str
    #: A configuration problem (exit status 2) rather than an unreachable service (1).
    config: bool = False
    #: For the sources check: its exit status (newsmon.exits.sources_exit), 0 otherwise.
    sources_exit: int = 0

    def line(self) -> str:
        label = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}[self.status]
        return f"{label:<5}{self.check}: {self.message}"


def exit_status(findings: list[Finding]) -> int:
    """0 all good (warnings allowed); 2 the configuration is invalid; 1 a service or endpoint
    is down; else 4 every enabled source is failing or disabled, 3 some are. The first that
    applies wins: a scheduler fixes the config before the services, the services before the
    feeds."""
    failed = [f for f in findings if f.status == "fail"]
    if any(f.config for f in failed):
        return EXIT_CONFIG
    if any(not f.sources_exit for f in failed):
        return EXIT_FAILED
    return max((f.sources_exit for f in failed), default=0)


def _tcp(host: str, port: int) -> str | None:
    """None when a TCP connection to host:port opens within the timeout, else why not."""
    return tcp_problem(host, port, TIMEOUT_S)


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    if not host:
        return port.strip("[]"), default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        return address, default_port


# --- config --------------------------------------------------------------------------------


def check_config(path: Path | None) -> tuple[Loaded | None, list[Finding]]:
    """The configuration as every command loads it (ops.loading.load_all): None when the
    settings themselves cannot be loaded, else what loaded, with a finding per problem."""
    try:
        loaded = load_all(path)
    except ConfigError as exc:
        return None, [
            Finding("fail", "config", f"{p} -> fix the file or the NEWSMON_* variable", True)
            for p in exc.problems
        ]
    findings = [Finding("fail", "config", p, True) for p in loaded.problems]
    if not findings:
        findings.append(Finding("ok", "config", f"{path or 'newsmon.yaml'}, feeds, topics and "
                                "alert rules are valid"))
    return loaded, findings


def check_state_dir(settings: Settings) -> Finding:
    directory = settings.state_dir
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Finding("fail", "state", f"{directory} is not writable ({exc.strerror or exc}) "
                       "-> create it writable for this user, or set state_dir "
                       "(NEWSMON_STATE_DIR)")
    return Finding("ok", "state", f"{directory} is writable")


def check_sources(settings: Settings, sources: FeedsConfig) -> Finding:
    """Disabled and failing sources, from the poller's stored health (nothing if never run)."""
    from newsmon.connectors.health import source_health
    from newsmon.ops.orchestrate import state_paths

    paths = state_paths(settings)
    health = source_health(sources, paths)
    disabled = [h.id for h in health if h.state == "disabled"]
    failing = [h.id for h in health if h.state == "failing"]
    enabled = sum(1 for h in health if h.enabled)
    if disabled or failing:
        names = ", ".join((disabled + failing)[:5]) + (" ..." if len(disabled + failing) > 5
                                                        else "")
        # A failing source is a failed check, not a warning: "all checks passed" with every
        # source failing told a scheduler nothing (issue 18).
        return Finding("fail", "sources",
                       f"{len(disabled)} disabled, {len(failing)} failing of {enabled} enabled "
                       f"({names}) -> see `newsmon sources`; fix or remove them in "
                       f"{settings.feeds.name}",
                       sources_exit=sources_exit(h.state for h in health))
    if not any(p.exists() for p in paths):
        return Finding("ok", "sources", f"{enabled} enabled, not polled yet")
    return Finding("ok", "sources", f"{enabled} enabled, none failing")


# --- Kafka ---------------------------------------------------------------------------------


def check_kafka(settings: Settings) -> list[Finding]:
    """Reachable, topics present, the group's lag. On the embedded default, Kafka is used by
    ``poll`` and ``pipeline run`` but not by ``newsmon run``: problems are warnings there."""
    kafka = settings.kafka
    severity: Status = "warn" if settings.search.backend == "embedded" else "fail"
    where = kafka.bootstrap_servers
    fix = ("-> start Kafka, or point kafka.bootstrap_servers (NEWSMON_KAFKA__BOOTSTRAP_SERVERS) "
           "at a running broker")
    errors = []
    for address in where.split(","):
        host, port = _host_port(address, 9092)
        error = _tcp(host, port)
        if error is None:
            break
        errors.append(f"{f'[{host}]' if ':' in host else host}:{port} ({error})")
    else:
        return [Finding(severity, "kafka", f"cannot connect to {', '.join(errors)} {fix}")]

    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    from newsmon.kafka import connect_problem
    from newsmon.pipeline.io_kafka import snapshot_ranges

    # The port answers; whether TLS and SASL go through is the next question (kafka-python's
    # own calls below would wait for metadata without a limit if the credentials are refused).
    if problem := connect_problem(kafka, timeout_s=TIMEOUT_S):
        return [Finding(severity, "kafka", f"{where}: {problem}")]

    options = kafka.client_options() | {"request_timeout_ms": int(TIMEOUT_S * 1000) + 2000,
                                       "api_version_auto_timeout_ms": int(TIMEOUT_S * 1000)}
    try:
        consumer = KafkaConsumer(enable_auto_commit=False, **options)
        try:
            topics = consumer.topics()
        finally:
            consumer.close()
    except KafkaError as exc:
        return [Finding(severity, "kafka", f"{where} accepts connections but does not answer as "
                        f"a Kafka broker ({type(exc).__name__}: {exc}) -> check the address, "
                        "kafka.security_protocol and the SASL settings")]
    findings = []
    if kafka.raw_topic not in topics:
        findings.append(Finding(
            "warn", "kafka", f"topic {kafka.raw_topic} does not exist yet -> it is created by "
            "the first `newsmon poll` if the broker auto-creates topics; otherwise create it"))
        return [Finding("ok", "kafka", f"broker at {where} answers"), *findings]
    try:
        ranges = snapshot_ranges(kafka, kafka.raw_topic, kafka.group_id)
    except Exception as exc:  # noqa: BLE001  # any client failure is this check's finding
        return [Finding(severity, "kafka", f"cannot read offsets of {kafka.raw_topic} for group "
                        f"{kafka.group_id}: {exc} -> check the broker's ACLs for this group")]
    lag = sum(r.size for r in ranges)
    findings.insert(0, Finding(
        "ok", "kafka", f"broker at {where} answers; topic {kafka.raw_topic} has "
        f"{len(ranges)} partitions; group {kafka.group_id} has {lag} records to process"))
    return findings


# --- search server ---------------------------------------------------------------------------


def check_search(settings: Settings) -> list[Finding]:
    search = settings.search
    if search.backend == "embedded":
        return [Finding("ok", "search", f"embedded store in {settings.state_dir} (no server)")]
    url = search.url.rstrip("/")
    shown = redacted_url(url)
    name = search.backend
    fix = ("-> start it, or point search.url (NEWSMON_SEARCH__URL) at a running "
           f"{name}")
    parts = urlsplit(url)
    # The clients' defaults: 443 for https; 9200 for http (opensearch-py; the elasticsearch
    # client needs the port, see SearchSettings.problems).
    error = _tcp(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 9200))
    if error is not None:
        return [Finding("fail", "search", f"cannot connect to {name} at {shown} "
                        f"({error}) {fix}")]
    verify: Any = search.ca_certs or search.verify_certs
    try:
        with httpx.Client(timeout=TIMEOUT_S + 2, verify=verify,
                          **search_auth_http(search)) as http:
            health = http.get(f"{url}/_cluster/health")
            if health.status_code == 401:
                return [Finding("fail", "search", f"{name} at {shown} rejected the "
                                "credentials (HTTP 401) -> set NEWSMON_SEARCH__API_KEY, or "
                                "search.username and NEWSMON_SEARCH__PASSWORD")]
            if health.status_code == 403:
                return [Finding("fail", "search", f"{name} at {shown}: the user may not "
                                "read cluster health (HTTP 403) -> grant the monitor cluster "
                                "privilege and write privileges on "
                                f"{search.index_prefix}-* indices")]
            if health.status_code >= 300:
                return [Finding("fail", "search", f"{name} at {shown} answered HTTP "
                                f"{health.status_code} to GET /_cluster/health {fix}")]
            status = health.json().get("status", "unknown")
            template = http.get(f"{url}/_index_template/{search.index_prefix}-articles")
    except httpx.HTTPError as exc:
        return [Finding("fail", "search", f"{name} at {shown}: {type(exc).__name__}: "
                        f"{exc} -> check search.url, TLS (search.ca_certs, verify_certs)")]
    findings = []
    if status == "red":
        findings.append(Finding("fail", "search", f"{name} at {shown} is red (some "
                                "primary shards unassigned) -> see GET /_cluster/allocation/"
                                "explain"))
    else:
        findings.append(Finding("ok", "search", f"{name} at {shown} answers, cluster "
                                f"{status}"))
    if template.status_code == 404:
        findings.append(Finding("warn", "search", f"no index templates for prefix "
                                f"{search.index_prefix} yet -> run `newsmon search setup` "
                                "(the pipeline also creates them on its first run)"))
    return findings


# --- alert channels --------------------------------------------------------------------------


def _check_channel(name: str, channel: ChannelConfig) -> Finding:
    from newsmon.pipeline.alerts.channels import make_notifier

    check = f"channel {name}"
    if channel.secret_env and not os.environ.get(channel.secret_env):
        return Finding("fail", check, f"environment variable {channel.secret_env} "
                       f"(channels.{name}.secret_env) is not set -> export it with the "
                       "channel's token or password")
    try:
        make_notifier(channel)
    except ValueError as exc:
        return Finding("fail", check, f"{exc} -> change channels.{name} in alerts.yaml", True)
    # Each channel type checks its own endpoint (the channel registry): no per-type code here.
    ok, message = channel_type(channel.type).check(channel, TIMEOUT_S)
    return Finding("ok" if ok else "fail", check, message)


def check_channels(alerts: AlertsConfig) -> Iterator[Finding]:
    for name, channel in alerts.channels.items():
        yield _check_channel(name, channel)


# --- all -------------------------------------------------------------------------------------


def run_checks(path: Path | None) -> list[Finding]:
    """Every check; stops after the settings only when they cannot be loaded at all."""
    loaded, findings = check_config(path)
    if loaded is None:
        return findings
    settings = loaded.settings
    findings.append(check_state_dir(settings))
    if loaded.feeds is not None:
        findings.append(check_sources(settings, loaded.feeds))
    findings += check_kafka(settings)
    findings += check_search(settings)
    if loaded.alerts is not None:
        findings += check_channels(loaded.alerts)
    return findings
