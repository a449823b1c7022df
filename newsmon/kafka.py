"""Kafka for both halves: the error a run fails with when the brokers cannot be reached, and
clear messages for Kafka failures (no Beam import: the pollers' publisher and the pipeline's
reader use it alike; the client options themselves are ``KafkaSettings.client_options``)."""

from __future__ import annotations

import logging
import socket
import ssl
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
