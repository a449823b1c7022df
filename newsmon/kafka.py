"""Kafka for both halves: the error a run fails with when the brokers cannot be reached, and
clear messages for Kafka failures (no Beam import: the pollers' publisher and the pipeline's
reader use it alike; the client options themselves are ``KafkaSettings.client_options``)."""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kafka.conn import BrokerConnection
from kafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    NoBrokersAvailable,
    SaslAuthenticationFailedError,
)

from newsmon.config import KafkaSettings


@dataclass(frozen=True)
class TopicLayout:
    partitions: int
    replicas: int
    min_insync: int

    def __str__(self) -> str:
        return (f"{self.partitions} partitions, {self.replicas} replica(s), "
                f"min.insync.replicas {self.min_insync}")


#: Partitions of newsmon's topics: up to this many pipeline workers can share the raw topic,
#: and keys (source ids) spread over them; on one broker they cost next to nothing.
TOPIC_PARTITIONS = 6


def topic_layout(brokers: int, partitions: int = TOPIC_PARTITIONS) -> TopicLayout:
    """The layout for a cluster of ``brokers``: three copies where there are three brokers
    (fewer where there are fewer), and an acknowledged write on two of them when there are
    three, so one broker may be lost, or restarted, without losing a write or stopping them.
    With two brokers, two copies and one needed: requiring both would stop every write while
    one restarts."""
    replicas = max(1, min(3, brokers))
    return TopicLayout(partitions, replicas, 2 if replicas >= 3 else 1)


class KafkaUnavailable(RuntimeError):
    """The broker could not be reached or did not acknowledge."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic a deployment uses: its partitions, the configs it must have beyond
    ``min.insync.replicas`` (which ``topic_layout`` sets), and whether an existing topic with
    another partition count is an error (the pollers' shard topics: the count is the shards)."""

    name: str
    partitions: int = TOPIC_PARTITIONS
    configs: tuple[tuple[str, str], ...] = ()
    exact_partitions: bool = False


class TopicMismatch(RuntimeError):
    """An existing topic has another partition count than its ``exact_partitions`` spec."""


def ensure_topics(settings: KafkaSettings, specs: Sequence[TopicSpec],
                  client_id: str = "newsmon-setup") -> list[str]:
    """Create those of ``specs`` that do not exist, laid out by ``topic_layout`` for the
    brokers alive now, with their configs; one line per topic saying what it has (as created
    now, or as found: an existing topic is never changed, but a config it lacks is named).
    Idempotent; several processes may run it at once. Raises KafkaUnavailable, and
    TopicMismatch for an ``exact_partitions`` topic with another count."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    if problem := connect_problem(settings):
        raise KafkaUnavailable(f"kafka at {settings.bootstrap_servers}: {problem}")
    try:
        admin = KafkaAdminClient(client_id=client_id, **settings.client_options())
    except KafkaError as exc:
        raise KafkaUnavailable(unavailable(settings, exc)) from exc
    try:
        brokers = len(admin.describe_cluster()["brokers"])
        existing = set(admin.list_topics())
        lines = []
        created = []
        for spec in specs:
            layout = topic_layout(brokers, spec.partitions)
            if spec.name not in existing:
                configs = {"min.insync.replicas": str(layout.min_insync), **dict(spec.configs)}
                try:
                    admin.create_topics([NewTopic(spec.name, layout.partitions, layout.replicas,
                                                  topic_configs=configs)])
                    lines.append(f"{spec.name}: created with {layout}{_extra(spec)} for "
                                 f"{brokers} broker(s)")
                    created.append(spec.name)
                    continue
                except TopicAlreadyExistsError:  # another process created it meanwhile
                    pass
            lines.append(_existing(admin, spec, brokers))
        _wait_listed(admin, created)
        return lines
    except KafkaError as exc:
        raise KafkaUnavailable(unavailable(settings, exc)) from exc
    finally:
        admin.close()


def _wait_listed(admin: Any, names: Sequence[str], wait_s: float = 10.0) -> None:
    """Until the brokers list every topic just created: the controller accepts a creation
    before the brokers' metadata has it, and a client asking right after (the next command,
    a producer) would find no such topic for a moment. Returns after ``wait_s`` regardless."""
    deadline = time.monotonic() + wait_s
    while names and not set(names) <= set(admin.list_topics()):
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)


def _extra(spec: TopicSpec) -> str:
    return "".join(f", {key} {value}" for key, value in spec.configs)


def _existing(admin: Any, spec: TopicSpec, brokers: int, wait_s: float = 10.0) -> str:
    """The line of an existing topic. One just created by another client may show no
    partitions for a moment (its metadata is still spreading): asked again until it does."""
    from kafka.admin import ConfigResource, ConfigResourceType

    deadline = time.monotonic() + wait_s
    while True:
        (found,) = admin.describe_topics([spec.name])
        parts = found["partitions"]
        if parts or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if spec.exact_partitions and len(parts) != spec.partitions:
        raise TopicMismatch(f"{spec.name} has {len(parts)} partitions, not {spec.partitions}")
    replicas = max((len(p["replicas"]) for p in parts), default=0)
    line = (f"{spec.name}: exists, {len(parts)} partitions, {replicas} replica(s) (left as it "
            f"is; {brokers} broker(s) alive)")
    if spec.configs:
        wanted = dict(spec.configs)
        (response,) = admin.describe_configs([ConfigResource(
            ConfigResourceType.TOPIC, spec.name, configs=dict.fromkeys(wanted))])
        have = {entry[0]: entry[1] for resource in response.resources for entry in resource[4]}
        line += "".join(f"; {key} is {have.get(key)!r}, not {value!r}: set it by hand"
                        for key, value in wanted.items() if have.get(key) != value)
    return line


#: Failures after which kafka-python says only that no broker answered in time.
_OPAQUE = (NoBrokersAvailable, KafkaTimeoutError)


def connect_problem(settings: KafkaSettings, timeout_s: float = 5.0) -> str:
    """Why no bootstrap broker accepts a connection, in words an operator can act on; ""
    when one does (connected, TLS verified, SASL authenticated).

    kafka-python reports a wrong SASL password, an untrusted certificate or a plaintext
    client on a TLS port alike, as "NoBrokersAvailable" or a metadata timeout (the cause
    goes only to its log), and some of its metadata calls wait without a time limit on a
    broker that refuses the credentials. One direct connection per bootstrap broker, with
    the same options, bounded in time, shows the cause. Never includes a secret.
    """
    reasons = []
    for server in settings.bootstrap_servers.split(","):
        reason = _connect_one(settings, server.strip(), timeout_s)
        if not reason:
            return ""
        reasons.append(reason)
    return reasons[0]


def _connect_one(settings: KafkaSettings, server: str, timeout_s: float) -> str:
    host, _, port = server.rpartition(":")
    options = {**settings.client_options(), "request_timeout_ms": int(timeout_s * 1000)}
    try:
        conn = BrokerConnection(host, int(port), socket.AF_UNSPEC, **options)
    except (ValueError, KafkaError) as exc:
        return f"{type(exc).__name__}: {exc}"
    sasl_failed = (f"SASL authentication failed for user {settings.sasl_username!r} "
                   f"(mechanism {settings.sasl_mechanism}): check kafka.sasl_username and "
                   "NEWSMON_KAFKA__SASL_PASSWORD")
    # A refused password closes the connection; kafka-python then says so only in its log.
    heard = _ErrorsOf(f"{host}:{port}")
    kafka_log = logging.getLogger("kafka.conn")
    kafka_log.addHandler(heard)
    try:
        connected = conn.connect_blocking(timeout=timeout_s)
    except SaslAuthenticationFailedError:
        return sasl_failed
    except ssl.SSLError as exc:
        return f"TLS: {exc} (is kafka.ssl_cafile the CA that signed the brokers?)"
    except (KafkaError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        kafka_log.removeHandler(heard)
        conn.close()
    if connected:
        return ""
    if heard.sasl_error is not None:
        return f"{sasl_failed} (the broker said: {heard.sasl_error})"
    if not settings.security_protocol.endswith("SSL"):
        return (f"no answer over {settings.security_protocol} within {timeout_s:g} s: does "
                "the listener expect TLS (kafka.security_protocol SSL or SASL_SSL)?")
    return f"no connection within {timeout_s:g} s"


class _ErrorsOf(logging.Handler):
    """Catches kafka-python's log line about a refused SASL authentication to one broker."""

    def __init__(self, address: str) -> None:
        super().__init__(logging.ERROR)
        self.address = address
        self.sasl_error: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "SaslAuthenticate error" in message and self.address in message:
            # log.error("%s: SaslAuthenticate error: %s (%s)", conn, error name, broker's text)
            args = record.args if isinstance(record.args, tuple) else ()
            self.sasl_error = str(args[-1]) if len(args) == 3 else message


def unavailable(settings: KafkaSettings, exc: Exception, what: str = "kafka") -> str:
    """The one-line message of a KafkaUnavailable or PublishError for ``exc``."""
    message = f"{what} at {settings.bootstrap_servers}: {type(exc).__name__}: {exc}"
    if isinstance(exc, _OPAQUE) and (cause := connect_problem(settings)):
        message += f": {cause}"
    return message


def discard_producer(producer: Any) -> None:
    """Close a producer whose sends failed, without waiting for what it still holds: that is
    dropped, and the caller publishes the same unmarked items again with a new producer (one
    with the same transactional id also aborts what the old one left open). A failure to
    close is logged, never raised over the error that led here."""
    if producer is None:
        return
    try:
        producer.close(timeout=0)
    except Exception as exc:  # noqa: BLE001 - closing a broken producer must not mask the error
        logging.getLogger(__name__).warning("closing the failed Kafka producer: %s", exc)
