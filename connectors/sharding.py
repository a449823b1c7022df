"""Pollers sharing the sources: shards held through Kafka group membership, seen marks in Kafka.

Assignment
    A source falls into shard ``shard_of(shard_key(source), P)``: a stable hash (BLAKE2b, not
    Python's salted ``hash()``) of its id, or of its host when that host has a politeness floor
    (named in ``defaults.hosts``, or ``defaults.per_host.interval_s`` above 0), so that every
    source of such a host sits with one poller, whose host gate spaces their requests as if
    there were one poller. The shards are the ``P`` partitions of the control topic
    ``<raw topic>.shards``; the pollers of a group are one Kafka consumer group subscribed to
    it, and Kafka's group coordinator hands each member its partitions. The topic carries no
    messages: membership is all it is for. Kafka's protocol does the coordination: a member
    that stops heartbeating for ``shard_session_timeout_ms`` is dropped and its shards go to
    the others; a member gives its shards up (``on_partitions_revoked``) before anyone else
    is given them, and it drops every poll of them still in flight before it answers.

Seen marks
    Each publish is one Kafka transaction: the items into the raw topic and a seen mark per
    item into the compacted topic ``<raw topic>.seen``, in the partition of the source's shard.
    A reader with ``isolation_level=read_committed`` sees both or neither. A poller given a
    shard reads that partition of the seen topic into its own SQLite state before polling the
    shard's sources, after waiting until no transaction is open on it (a dead owner's open
    transaction is aborted by the broker ``shard_transaction_timeout_ms`` after it began,
    plus the broker's check interval, 10 s by default). So:

    - killed before the commit: nothing of that publish is visible; the items are not marked
      anywhere and the next owner publishes them (once);
    - killed after the commit, before the local mark: the marks are in Kafka; the next owner
      reads them and does not publish the items again.

    Cursors and health stay local: a new owner without them polls at once and gets a full
    feed, which its marks deduplicate. Pruned seen marks are not removed from the topic
    (its compaction keeps one record per item): a topic that grows with the items, bounded by
    ``retention.ms`` if the operator sets one beyond ``seen_retention_days``.

Takeover bound (docs/scaling.md): session timeout + one heartbeat + the wait for a dead
owner's transaction, ``shard_session_timeout_ms + shard_session_timeout_ms / 3 +
max(0, shard_transaction_timeout_ms + 10 s - shard_session_timeout_ms)``: 23.3 s with the
defaults (10 s, 10 s), plus the reading of the seen marks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from newsmon.closing import Closing
from newsmon.config import KafkaSettings, PollerSettings
from newsmon.connectors.base import Defaults, SourceBase
from newsmon.connectors.publisher import KafkaPublisher, PublishError
from newsmon.connectors.state import StateStore
from newsmon.kafka import TopicMismatch, TopicSpec, ensure_topics
from newsmon.models import RawItem


class Share(Protocol):
    """Which sources a poller may poll when pollers share them: the hooks the runner's
    ``Poller`` calls (``ShardMember`` implements them)."""

    def owns(self, source_id: str) -> bool: ...

    def claim(self, source_ids: Sequence[str]) -> set[str]:
        """Those this poller holds now, in flight until released."""
        ...

    def release(self, source_id: str) -> None: ...

    def recording(self, source_id: str) -> AbstractContextManager[bool]:
        """Held while a poll is published and marked: whether the source is still ours."""
        ...

    def changed(self) -> bool:
        """Whether the sources held changed since the last call."""
        ...


log = logging.getLogger(__name__)

#: Broker default of ``transaction.abort.timed.out.transaction.cleanup.interval.ms``: how late
#: after its timeout a dead poller's transaction may still be open.
BROKER_ABORT_CHECK_S = 10.0
#: How long a poller giving shards up waits for its polls of them still in flight (they are
#: dropped when they end; an HTTP fetch is bounded by its own deadline, well below this).
REVOKE_WAIT_S = 120.0
#: The separator of a seen mark's key: ``<source id>\n<item id>`` (neither holds a newline).
_SEP = "\n"


# --- assignment (pure) ------------------------------------------------------------------------

def shard_of(key: str, shards: int) -> int:
    """The shard of ``key`` among ``shards``: the same on every host, Python and run."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def polite_host(source: SourceBase, defaults: Defaults) -> str | None:
    """The host of ``source`` when its requests must be spaced (a politeness floor), else
    None. Only then is the host the shard key: keying every source by its host would put all
    the feeds of one big publisher on one poller."""
    try:
        host = (urlsplit(source.location).hostname or "").lower()
    except (NotImplementedError, ValueError):
        return None
    if not host:
        return None
    limit = defaults.hosts.get(host, defaults.per_host)
    return host if limit.interval_s > 0 else None


def shard_key(source: SourceBase, defaults: Defaults) -> str:
    """What decides a source's shard: its polite host (``host:<name>``) or its id."""
    host = polite_host(source, defaults)
    return f"host:{host}" if host else f"source:{source.id}"


def assign(sources: Iterable[SourceBase], defaults: Defaults, shards: int) -> dict[str, int]:
    """Source id -> shard, for every source."""
    return {s.id: shard_of(shard_key(s, defaults), shards) for s in sources}


# --- topics --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShardNames:
    """The Kafka names of one group: derived from the raw topic, whose items the seen marks
    belong to, so two installations on one cluster never share them."""

    control: str
    seen: str
    group_id: str
    member: str
    transactional_id: str


def _topic_names(kafka: KafkaSettings) -> tuple[str, str]:
    return f"{kafka.raw_topic}.shards", f"{kafka.raw_topic}.seen"


def shard_names(kafka: KafkaSettings, poller: PollerSettings) -> ShardNames:
    if poller.shard_group is None:
        raise ValueError("poller.shard_group is not set")
    member = poller.shard_member or socket.gethostname()
    control, seen = _topic_names(kafka)
    return ShardNames(
        control=control, seen=seen,
        group_id=f"newsmon-poller.{poller.shard_group}", member=member,
        transactional_id=f"newsmon-poller.{poller.shard_group}.{member}",
    )


def shard_topics(kafka: KafkaSettings, shards: int) -> list[TopicSpec]:
    """The topics of every shard group on ``kafka.raw_topic`` (their names derive from the
    raw topic only): the control topic, whose ``shards`` partitions are the shards, and the
    compacted seen topic, a partition per shard."""
    control, seen = _topic_names(kafka)
    return [TopicSpec(control, shards, exact_partitions=True),
            TopicSpec(seen, shards, (("cleanup.policy", "compact"),), exact_partitions=True)]


def ensure_shard_topics(kafka: KafkaSettings, names: ShardNames, shards: int) -> None:
    """Create the control and seen topics with ``shards`` partitions if they do not exist;
    refuse existing ones with another count (the pollers would disagree about the shards)."""
    try:
        for line in ensure_topics(kafka, shard_topics(kafka, shards), "newsmon-poller-setup"):
            log.info("%s", line)
    except TopicMismatch as exc:
        raise PublishError(f"{exc} (poller.shard_partitions): set poller.shard_partitions "
                           "to the topic's count") from exc


# --- publishing items with their seen marks -----------------------------------------------------

def seen_mark(item: RawItem) -> tuple[bytes, bytes]:
    """The seen topic's record of ``item``: key ``<source id>\\n<item id>``, value its
    revision and first sighting."""
    key = f"{item.source.id}{_SEP}{item.item_id}".encode()
    value = json.dumps({"revision": item.revision,
                        "first_seen_at": item.first_seen_at.isoformat()}).encode()
    return key, value


def read_mark(key: bytes, value: bytes) -> tuple[str, str, tuple[str, datetime]]:
    """(source id, item id, (revision, first seen)) of a seen topic record."""
    source_id, item_id = key.decode("utf-8").split(_SEP, 1)
    data = json.loads(value)
    return source_id, item_id, (str(data["revision"]),
                                datetime.fromisoformat(data["first_seen_at"]))


class TransactionalPublisher(KafkaPublisher):
    """Publishes a source's items and their seen marks in one Kafka transaction (the
    ``Publisher`` contract: returns only once both are committed, else PublishError and
    nothing of the batch is visible to read_committed readers)."""

    def __init__(self, kafka: KafkaSettings, names: ShardNames, shards: Mapping[str, int],
                 transaction_timeout_ms: int) -> None:
        super().__init__(kafka)
        self.kafka = kafka
        self.names = names
        self.shards = shards
        self.transaction_timeout_ms = transaction_timeout_ms

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "client_id": f"newsmon-poller.{self.names.member}",
                "transactional_id": self.names.transactional_id,
                "transaction_timeout_ms": self.transaction_timeout_ms}

    def _get_producer(self) -> Any:
        fresh = self._producer is None
        producer = super()._get_producer()
        if fresh:
            # Fences off an earlier producer of this member and aborts its open transaction;
            # a producer that could not do so is not kept (the publish fails and resets it).
            producer.init_transactions()
        return producer

    def publish(self, items: Sequence[RawItem]) -> None:
        if not items:
            return
        from kafka.errors import KafkaError

        with self._lock:
            try:
                producer = self._get_producer()
                producer.begin_transaction()
                for item in items:
                    producer.send(self.kafka.raw_topic, key=item.source.id.encode("utf-8"),
                                  value=item.to_json())
                    key, value = seen_mark(item)
                    producer.send(self.names.seen, key=key, value=value,
                                  partition=self.shards[item.source.id])
                producer.commit_transaction()
            except (KafkaError, OSError) as exc:
                self._reset()
                raise PublishError(f"{self.kafka.raw_topic}: {len(items)} items not "
                                   f"committed: {type(exc).__name__}: {exc}") from exc


# --- membership ----------------------------------------------------------------------------------

class ShardMember(Closing):
    """This poller's place in its group: which shards it holds, in a thread of its own that
    keeps the group membership alive. Implements the runner's ``Share`` hooks."""

    def __init__(self, kafka: KafkaSettings, poller: PollerSettings, names: ShardNames,
                 shards: Mapping[str, int], state: StateStore) -> None:
        self.kafka = kafka
        self.settings = poller
        self.names = names
        self.shards = shards
        self.state = state
        self._cond = threading.Condition()
        self._owned: set[int] = set()
        self._busy: set[str] = set()
        self._changed = False
        #: Per seen partition, the offset its marks are read up to (read again from there).
        self._loaded: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="newsmon-shards", daemon=True)

    def start(self) -> ShardMember:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.kafka.request_timeout_ms / 1000 + 10)

    # --- the runner's hooks -------------------------------------------------------------

    def owns(self, source_id: str) -> bool:
        with self._cond:
            return self.shards.get(source_id) in self._owned

    def claim(self, source_ids: Sequence[str]) -> set[str]:
        """Those of ``source_ids`` this poller holds now, marked in flight until released."""
        with self._cond:
            mine = {s for s in source_ids if self.shards.get(s) in self._owned}
            self._busy |= mine
            return mine

    def release(self, source_id: str) -> None:
        with self._cond:
            self._busy.discard(source_id)
            self._cond.notify_all()

    @contextmanager
    def recording(self, source_id: str) -> Iterator[bool]:
        """Held while a poll of ``source_id`` is published and marked: yields whether the
        source is still this poller's; its shard cannot be given up meanwhile."""
        with self._cond:
            yield self.shards.get(source_id) in self._owned

    def changed(self) -> bool:
        """Whether the shards held changed since the last call."""
        with self._cond:
            changed, self._changed = self._changed, False
            return changed

    # --- Kafka's rebalance listener (called in this member's thread) -----------------------

    def on_partitions_revoked(self, revoked: Iterable[Any]) -> None:
        gone = {tp.partition for tp in revoked}
        deadline = time.monotonic() + REVOKE_WAIT_S
        with self._cond:
            self._owned -= gone
            self._changed = True
            while (left := deadline - time.monotonic()) > 0 and any(
                    self.shards.get(s) in gone for s in self._busy):
                self._cond.wait(left)
            still = sorted(s for s in self._busy if self.shards.get(s) in gone)
            if still:
                log.warning("shard member %s: polls of %s still running after %.0f s; "
                            "giving their shards up anyway (their results will be dropped)",
                            self.names.member, ", ".join(still), REVOKE_WAIT_S)
            # Logged under the lock: nothing of these shards is polled here after this line
            # (tests/faults/test_sharded_pollers.py reads the holding times from the logs).
            if gone:
                log.info("shard member %s: gave up shards %s", self.names.member,
                         _ranges(gone))

    def on_partitions_assigned(self, assigned: Iterable[Any]) -> None:
        given = {tp.partition for tp in assigned}
        started = time.monotonic()
        marks = self._load(given) if given else 0
        with self._cond:
            # Logged before the shards are taken: nothing of them is polled here before it.
            owned = self._owned | given
            sources = sum(1 for shard in self.shards.values() if shard in owned)
            log.info("shard member %s: holds shards %s (%d sources); %d seen marks read in "
                     "%.1f s", self.names.member, _ranges(owned), sources, marks,
                     time.monotonic() - started)
            self._owned = owned
            self._changed = True

    # --- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        from kafka import ConsumerRebalanceListener, KafkaConsumer

        member = self

        # kafka-python takes only subclasses of its (untyped) listener class.
        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                member.on_partitions_revoked(revoked)

            def on_partitions_assigned(self, assigned: Any) -> None:
                member.on_partitions_assigned(assigned)

        while not self._stop.is_set():
            consumer = None
            try:
                session = self.settings.shard_session_timeout_ms
                # kafka-python wants a request timeout above the session timeout (a join
                # waits up to the session timeout for the other members).
                options = self.kafka.client_options() | {
                    "request_timeout_ms": max(self.kafka.request_timeout_ms, session + 5_000)}
                consumer = KafkaConsumer(
                    **options, group_id=self.names.group_id,
                    client_id=f"newsmon-poller.{self.names.member}", enable_auto_commit=False,
                    session_timeout_ms=session, heartbeat_interval_ms=session // 3)
                consumer.subscribe([self.names.control], listener=Listener())
                while not self._stop.is_set():
                    consumer.poll(timeout_ms=500)
            except Exception:  # a broker outage: hold nothing, join again shortly
                log.exception("shard member %s: group membership failed; rejoining",
                              self.names.member)
                self._drop_all()
                self._stop.wait(2.0)
            finally:
                if consumer is not None:
                    self._drop_all()
                    consumer.close(autocommit=False)

    def _drop_all(self) -> None:
        with self._cond:
            held = set(self._owned)
        if held:
            self.on_partitions_revoked(_Partition(p) for p in held)

    def _load(self, shards: set[int]) -> int:
        """Read the seen marks of ``shards`` into the state store; returns how many."""
        from kafka import KafkaConsumer, TopicPartition

        tps = [TopicPartition(self.names.seen, p) for p in sorted(shards)]
        # kafka-python's frame limit (1 MB by default) must exceed what one fetch may bring.
        options = self.kafka.client_options() | {"fetch_max_bytes": 8 * 1024 * 1024,
                                                 "receive_message_max_bytes": 16 * 1024 * 1024}
        committed = KafkaConsumer(**options, isolation_level="read_committed",
                                  enable_auto_commit=False)
        latest = KafkaConsumer(**options, enable_auto_commit=False)
        try:
            stable = self._stable_ends(tps, committed, latest)
            committed.assign(tps)
            for tp in tps:
                committed.seek(tp, self._loaded.get(tp.partition, 0))
            count = 0
            deadline = time.monotonic() + self.kafka.request_timeout_ms / 1000 * 4
            while any(committed.position(tp) < stable[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.names.seen}: seen marks not read in time")
                by_source: dict[str, dict[str, tuple[str, datetime]]] = {}
                for records in committed.poll(timeout_ms=500).values():
                    for record in records:
                        source_id, item_id, mark = read_mark(record.key, record.value)
                        by_source.setdefault(source_id, {})[item_id] = mark
                now = datetime.now(UTC)
                for source_id, found in by_source.items():
                    self.state.mark_seen(source_id, found, now=now)
                    count += len(found)
            for tp in tps:
                self._loaded[tp.partition] = committed.position(tp)
            return count
        finally:
            committed.close(autocommit=False)
            latest.close(autocommit=False)

    def _stable_ends(self, tps: list[Any], committed: Any, latest: Any) -> dict[Any, int]:
        """The end of each partition once no transaction is open on it: a dead owner's open
        transaction hides everything after its start from read_committed readers until the
        broker aborts it."""
        limit = self.settings.shard_transaction_timeout_ms / 1000 + BROKER_ABORT_CHECK_S + 5
        deadline = time.monotonic() + limit
        while True:
            stable = committed.end_offsets(tps)
            high = latest.end_offsets(tps)
            open_ = [tp.partition for tp in tps if stable[tp] < high[tp]]
            if not open_:
                return dict(stable)
            if time.monotonic() > deadline:
                log.warning("shard member %s: shards %s still have an open transaction "
                            "after %.0f s; reading what is committed", self.names.member,
                            _ranges(set(open_)), limit)
                return dict(stable)
            time.sleep(0.5)


@dataclass(frozen=True)
class _Partition:
    """What the revoke listener reads of a TopicPartition (for dropping shards ourselves)."""

    partition: int


def _ranges(shards: Iterable[int]) -> str:
    """``0-3,7,9-10``: shard lists in logs stay one short line."""
    out: list[str] = []
    for n in sorted(set(shards)):
        if out and out[-1].split("-")[-1] == str(n - 1):
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ",".join(out) or "none"


__all__ = [
    "ShardMember",
    "ShardNames",
    "TransactionalPublisher",
    "assign",
    "ensure_shard_topics",
    "shard_names",
    "shard_of",
    "shard_topics",
]
