"""Reading raw items from Kafka inside Beam, and committing offsets only after the writes.

Why a pure-Python read on kafka-python rather than Beam's ``ReadFromKafka``: the latter is a
Java cross-language transform that needs a Java expansion service of the same Beam version,
and the registry here serves Beam's Java jars only for older versions than the Python SDK
(see docs/kafka-read.md). A bounded read of fixed offset ranges also makes the batch
guarantee simple to state:

1. the driver snapshots, per partition, [committed offset, end offset) for the consumer group;
2. the pipeline reads exactly those ranges and writes everything they contain;
3. only when the pipeline finished (every bulk write acknowledged) does the driver commit the
   end offsets. A crash before 3 re-reads the same ranges next time, and since every write is
   keyed by a content-derived id, the re-run duplicates nothing.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import apache_beam as beam
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from newsmon.config import KafkaSettings
from newsmon.kafka import (
    KafkaUnavailable,
    TopicSpec,
    connect_problem,
    unavailable,
)
from newsmon.kafka import ensure_topics as ensure_kafka_topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartitionRange:
    topic: str
    partition: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


@dataclass(frozen=True)
class RawRecord:
    """A message as read: the payload is decoded by the pipeline's first stage."""

    key: str
    payload: bytes
    origin: str


def _consumer(settings: KafkaSettings, group_id: str | None) -> KafkaConsumer:
    # kafka-python refuses a request timeout at or below the session timeout (10 s by
    # default). The pipeline reads assigned partitions and uses its group only for offsets,
    # so the session timeout is shortened to fit instead of refusing a short request timeout.
    session_ms = min(10_000, settings.request_timeout_ms - 1)
    try:
        return KafkaConsumer(
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(1, session_ms // 3),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Sharded pollers publish items in transactions: an aborted publish's items are
            # published again by the shard's next owner, so only committed ones are read.
            isolation_level="read_committed",
            consumer_timeout_ms=1000,
            # kafka-python's defaults disagree: a 1 MiB partition fetch does not fit its 1 MB
            # frame limit ("Invalid frame length"), so raise the frame limit above the fetch.
            max_partition_fetch_bytes=1024 * 1024,
            fetch_max_bytes=16 * 1024 * 1024,
            receive_message_max_bytes=32 * 1024 * 1024,
            **settings.client_options(),
        )
    except KafkaError as exc:
        raise KafkaUnavailable(unavailable(settings, exc)) from exc
    except ssl.SSLError as exc:  # kafka-python lets a failed TLS handshake through as is
        raise KafkaUnavailable(f"kafka at {settings.bootstrap_servers}: TLS: {exc}"
                               " (is kafka.ssl_cafile the CA that signed the brokers?)") from exc


@dataclass(frozen=True)
class WorkerShare:
    """Worker ``index`` of ``count`` (``--worker i/M``): it owns the partitions ``p`` with
    ``p % count == index``. The M shares of one M are disjoint and cover every partition,
    partitions added later included, so M processes sharing one consumer group read each
    item once; each commits only its own partitions' offsets, after its own writes, so the
    exactly-once effect of a batch run holds per partition as it does for one process.

    Why a fixed modulo rather than Kafka's group assignment: a batch run is short and
    reads fixed offset ranges; a group rebalance while the ranges are read would hand a
    partition to a second process in the middle of them. With 6 partitions, 1, 2, 3 and 6
    workers get equal shares; 4 get 2, 2, 1, 1.
    """

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"worker {self.index}/{self.count}: want i/M with 0 <= i < M")

    @classmethod
    def parse(cls, text: str) -> WorkerShare:
        """``"i/M"`` -> the share; ValueError saying what is wrong otherwise."""
        index, sep, count = text.partition("/")
        if not sep or not index.strip().isdigit() or not count.strip().isdigit():
            raise ValueError(f"worker {text!r}: want i/M, e.g. 0/2 (the first of two)")
        return cls(int(index), int(count))

    def owns(self, partition: int) -> bool:
        return partition % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


#: One process reading every partition.
EVERY_PARTITION = WorkerShare()


def snapshot_ranges(settings: KafkaSettings, topic: str, group_id: str,
                    share: WorkerShare = EVERY_PARTITION) -> list[PartitionRange]:
    """Per partition of ``share``, what the group has not processed yet, up to the current
    end."""
    consumer = open_consumer(settings, group_id)
    try:
        return ranges_of(consumer, settings, topic, share)
    finally:
        consumer.close()


def open_consumer(settings: KafkaSettings, group_id: str) -> KafkaConsumer:
    """A consumer of ``group_id`` for :func:`ranges_of` (it joins no group); the caller
    closes it."""
    # kafka-python's metadata call in ranges_of waits without a limit on a broker that refuses
    # the credentials: check first, in bounded time, that one broker accepts them.
    if problem := connect_problem(settings):
        raise KafkaUnavailable(f"kafka at {settings.bootstrap_servers}: {problem}")
    return _consumer(settings, group_id)


def ranges_of(consumer: KafkaConsumer, settings: KafkaSettings, topic: str,
              share: WorkerShare = EVERY_PARTITION) -> list[PartitionRange]:
    """Per partition of ``topic`` in ``share``, [the group's committed offset, the end) as the
    broker says now: the consumer is assigned nothing, so each call asks again (offsets are
    not cached)."""
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions) if share.owns(p)]
        if not tps:
            return []
        begin = consumer.beginning_offsets(tps)
        end = consumer.end_offsets(tps)
        ranges = []
        for tp in tps:
            committed = consumer.committed(tp)
            start = max(committed if committed is not None else 0, begin[tp])
            ranges.append(PartitionRange(topic, tp.partition, start, end[tp]))
        return ranges
    except KafkaError as exc:
        raise KafkaUnavailable(unavailable(settings, exc)) from exc


def commit_ranges(settings: KafkaSettings, group_id: str, ranges: Sequence[PartitionRange]) -> None:
    """Commit each range's end as the group's position. Call only after the writes."""
    offsets = {
        TopicPartition(r.topic, r.partition): OffsetAndMetadata(r.end, "", -1)
        for r in ranges
        if r.size
    }
    if not offsets:
        return
    consumer = _consumer(settings, group_id)
    try:
        consumer.assign(list(offsets))
        consumer.commit(offsets)
    except KafkaError as exc:
        raise KafkaUnavailable(f"offset commit to {settings.bootstrap_servers}: {exc}") from exc
    finally:
        consumer.close()
    log.info("committed offsets for group %s: %s", group_id,
             {f"{tp.topic}/{tp.partition}": om.offset for tp, om in offsets.items()})


def pipeline_topics(settings: KafkaSettings) -> list[TopicSpec]:
    """The pipeline's topics: raw items and dead letters, ``TOPIC_PARTITIONS`` each."""
    return [TopicSpec(settings.raw_topic), TopicSpec(settings.dead_letter_topic)]


def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create the pipeline's topics that do not exist yet (``newsmon.kafka.ensure_topics``:
    one line per topic). Without this, the first producer has the broker create them with
    the broker's defaults."""
    return ensure_kafka_topics(settings, pipeline_topics(settings))


class ReadPartitionRangeFn(beam.DoFn):
    """PartitionRange -> RawRecord for every message in the range, in offset order."""

    def __init__(self, settings: KafkaSettings, poll_timeout_ms: int = 1000) -> None:
        super().__init__()
        self.settings = settings
        self.poll_timeout_ms = poll_timeout_ms

    def process(self, rng: PartitionRange) -> Iterator[RawRecord]:
        if not rng.size:
            return
        consumer = _consumer(self.settings, None)
        tp = TopicPartition(rng.topic, rng.partition)
        try:
            consumer.assign([tp])
            consumer.seek(tp, rng.start)
            position = rng.start
            idle_polls = 0
            while position < rng.end:
                batch = consumer.poll(timeout_ms=self.poll_timeout_ms).get(tp, [])
                if not batch:
                    # Transaction markers (sharded pollers publish in transactions) and the
                    # items of aborted ones take offsets but never come back as records: the
                    # consumer's position moves past them, so the range can end on no record.
                    position = max(position, consumer.position(tp))
                    if position >= rng.end:
                        return
                    idle_polls += 1
                    if idle_polls > 30:
                        raise KafkaUnavailable(
                            f"no progress reading {rng.topic}/{rng.partition} at offset {position}"
                        )
                    continue
                idle_polls = 0
                for msg in batch:
                    if msg.offset >= rng.end:
                        return
                    position = msg.offset + 1
                    yield RawRecord(
                        key=(msg.key or b"").decode("utf-8", "replace"),
                        payload=msg.value or b"",
                        origin=f"{rng.topic}/{rng.partition}/{msg.offset}",
                    )
        finally:
            consumer.close()


class KafkaDeadLetterProducer:
    """Sends dead letters to their topic; ``send_all`` returns only when all were acknowledged."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._producer: KafkaProducer | None = None

    def send_all(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if self._producer is None:
            self._producer = KafkaProducer(acks="all", **self.settings.client_options())
        futures = [
            self._producer.send(self.settings.dead_letter_topic, key=k.encode(), value=v)
            for k, v in messages
        ]
        self._producer.flush()
        for fut in futures:
            try:
                fut.get(timeout=self.settings.request_timeout_ms / 1000)
            except KafkaError as exc:
                raise KafkaUnavailable(f"dead-letter topic: {exc}") from exc

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None
