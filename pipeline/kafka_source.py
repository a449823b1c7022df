"""The unbounded Kafka read of stream mode: one splittable DoFn, one restriction per partition.

Pure Python on kafka-python, for the reason io_kafka.py gives (Beam's ``ReadFromKafka`` needs
a Java expansion service the registry does not serve for this Beam version).

- The partitions the topic has at start are listed by the driver, one element each; a
  periodic impulse lists them again and a stateful DoFn keyed by topic lets through those
  added since, once, so a partition added while the pipeline runs is read from the next tick.
- Each partition is one element whose restriction is the unbounded offset range
  ``[start, MAX)``, ``start`` being where the consumer group stands (its committed offset, or
  the log start if that is later). One ``process`` call is one poll: it claims the offsets it
  read and hands the rest back with ``defer_remainder``. A bundle whose polls all found
  nothing ends when one of its partitions has a record, or after ``idle_wait_s`` (``IdleBell``
  in ``finish_bundle``): an idle stream does not spin through the runner, and a record ends
  the wait at once. A checkpoint is therefore always at a record boundary.
- A runner hands the residuals of several partitions to one bundle (Prism does), and the
  batching stages after the read flush only when the bundle ends. So the polls of a bundle
  share one wait budget (``poll_ms``), and once a poll of the bundle returned records the
  others do not wait at all: a bundle ends within about ``poll_ms`` whatever the partition
  count, and at once after records (see ``PollBudget``; docs/benchmarks.md has the figures).
- The watermark is set by hand from record timestamps (never moving back); a poll that finds
  nothing moves it to the wall clock minus ``idle_lag``, so an idle partition does not hold
  back the event-time progress of the others.

Every record leaves with ``before``: the partition position just before it (the restriction's
start for the first). The commit stage chains ``before -> offset + 1`` to find the contiguous
prefix it may commit, whatever gaps compaction or transactions left in the offsets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider, WatermarkEstimatorProvider
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.transforms.userstate import BagStateSpec
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from newsmon.config import KafkaSettings
from newsmon.kafka import KafkaUnavailable, unavailable
from newsmon.pipeline.io_kafka import EVERY_PARTITION, RawRecord, WorkerShare, _consumer

log = logging.getLogger(__name__)

#: The end of an unbounded restriction: no Kafka offset reaches it.
UNBOUNDED = 2**62


@dataclass(frozen=True)
class PartitionRef:
    topic: str
    partition: int

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @property
    def name(self) -> str:
        return f"{self.topic}/{self.partition}"


@dataclass(frozen=True)
class KafkaRecord:
    """A record as the stream read it: the pipeline's input, and where it sits in its
    partition (``before`` -> ``offset + 1``) for the commit stage."""

    record: RawRecord
    partition: PartitionRef
    before: int
    offset: int


def start_offset(consumer: KafkaConsumer, tp: TopicPartition) -> int:
    """Where the consumer group resumes in ``tp``: its committed offset, or the log start
    when that is later (retention removed what it had not read), 0 for a new group."""
    committed = consumer.committed(tp)
    begin = consumer.beginning_offsets([tp])[tp]
    return int(max(committed if committed is not None else 0, begin))


def list_partitions(settings: KafkaSettings) -> list[int]:
    """The raw topic's partitions now, asked with a fresh client (a long-lived one answers
    from metadata it cached, which hides a partition added since)."""
    consumer = _consumer(settings, None)
    try:
        return sorted(consumer.partitions_for_topic(settings.raw_topic) or ())
    except KafkaError as exc:
        raise KafkaUnavailable(unavailable(settings, exc)) from exc
    finally:
        consumer.close()


class ListPartitionsFn(beam.DoFn):
    """Tick -> (topic, PartitionRef) for every partition of ``share`` the topic has now
    beyond ``known`` (those the pipeline started with: partitions are only ever added)."""

    def __init__(self, settings: KafkaSettings, known: frozenset[int],
                 share: WorkerShare = EVERY_PARTITION) -> None:
        super().__init__()
        self.settings = settings
        self.known = known
        self.share = share

    def process(self, _tick: Any) -> Iterator[tuple[str, PartitionRef]]:
        topic = self.settings.raw_topic
        for partition in list_partitions(self.settings):
            if partition not in self.known and self.share.owns(partition):
                yield topic, PartitionRef(topic, partition)


class NewPartitionsFn(beam.DoFn):
    """(topic, PartitionRef) -> the PartitionRef the first time it is seen.

    A bag of the partitions seen, not a read-modify-write value (which lost updates between
    bundles on Prism). Even so, Prism was seen to run two bundles of the same key side by side
    with state of their own, so this guards only partitions added while the stream runs; those
    it started with come from the driver's own listing, once each.
    """

    SEEN = BagStateSpec("seen", beam.coders.VarIntCoder())

    def process(self, element: tuple[str, PartitionRef],
                seen: Any = beam.DoFn.StateParam(SEEN),  # noqa: B008 - Beam's way
                ) -> Iterator[PartitionRef]:
        _, ref = element
        if ref.partition not in set(seen.read()):
            seen.add(ref.partition)
            log.info("stream: reading partition %s", ref.name)
            yield ref


class _Watermarks(WatermarkEstimatorProvider):
    def initial_estimator_state(self, element: PartitionRef, restriction: OffsetRange) -> None:
        return None

    def create_watermark_estimator(self, state: Timestamp | None) -> ManualWatermarkEstimator:
        return ManualWatermarkEstimator(state)


WATERMARKS = _Watermarks()


def _advance(estimator: ManualWatermarkEstimator, to: Timestamp) -> None:
    current = estimator.current_watermark()
    if current is None or to > current:
        estimator.set_watermark(to)


class PollBudget:
    """How long the next poll of a bundle may wait: the bundle's polls share ``poll_ms``, and
    after a poll that found records none waits (pure logic; ``clock`` in seconds)."""

    def __init__(self, poll_ms: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.poll_ms = poll_ms
        self.clock = clock
        self.deadline: float | None = None
        self.found = False

    def start(self) -> None:
        """A new bundle: a fresh budget, counted from its first poll."""
        self.deadline = None
        self.found = False

    def next_timeout_ms(self) -> int:
        if self.found:
            return 0
        now = self.clock()
        if self.deadline is None:
            self.deadline = now + self.poll_ms / 1000
        return max(0, round((self.deadline - now) * 1000))

    def records_found(self) -> None:
        self.found = True


class IdleBell:
    """Waits, without spinning, until a partition has a record past a given position: one
    extra consumer of the bundle's partitions, whose records are only a signal (the readers
    read them). A blocked fetch costs no CPU and returns as soon as a record is committed."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.consumer: KafkaConsumer | None = None

    def wait(self, positions: dict[TopicPartition, int], timeout_s: float) -> set[TopicPartition]:
        """The partitions with a record past ``positions`` (partition -> next offset to read)
        as soon as there is one, at once when one is there already; none after ``timeout_s``."""
        if self.consumer is None:
            self.consumer = _consumer(self.settings, None)
        consumer = self.consumer
        try:
            consumer.assign(list(positions))
            for tp, offset in positions.items():
                consumer.seek(tp, offset)
            deadline = time.monotonic() + timeout_s
            while (left := deadline - time.monotonic()) > 0:
                if found := consumer.poll(timeout_ms=max(1, round(left * 1000)),
                                          max_records=1):
                    return set(found)
            return set()
        except KafkaError as exc:
            raise KafkaUnavailable(unavailable(self.settings, exc)) from exc

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None


@beam.DoFn.unbounded_per_element()
class ReadPartitionsFn(beam.DoFn, RestrictionProvider):
    """PartitionRef -> KafkaRecord for every record, for ever (see the module docstring).

    It is its own restriction provider: a partition's restriction runs from where the group
    stands, without end.
    """

    def __init__(self, settings: KafkaSettings, *, poll_ms: int = 100,
                 idle_wait_s: float = 2.0, idle_lag_s: float = 2.0,
                 max_records: int = 500) -> None:
        super().__init__()
        self.settings = settings
        self.poll_ms = poll_ms
        self.idle_wait_s = idle_wait_s
        self.idle_lag_s = idle_lag_s
        self.max_records = max_records
        self.consumers: dict[PartitionRef, KafkaConsumer] = {}
        self.budget = PollBudget(poll_ms)
        self.bell = IdleBell(settings)
        #: The partitions this bundle polled in vain, with the offset each reader reads next.
        self.idle: dict[TopicPartition, int] = {}
        #: Those whose record ended the last bundle's idle wait: the next bundle's polls of
        #: the others do not wait, so they do not hold that record up.
        self.woken: set[TopicPartition] = set()

    def start_bundle(self) -> None:
        self.budget.start()
        self.idle = {}

    def finish_bundle(self) -> None:
        # A bundle whose polls all came back empty ends only when one of its partitions has a
        # record, or after ``idle_wait_s``: resuming at once kept an idle stream cycling a
        # bundle through Prism every ~0.15 s (27% of a core, docs/benchmarks.md "Idle CPU"),
        # and a resume delay (``defer_remainder(delay)``) cost a record arriving meanwhile
        # far more than the delay on Prism.
        self.woken = set()
        if self.idle and not self.budget.found:
            self.woken = self.bell.wait(self.idle, self.idle_wait_s)

    def _consumer_for(self, ref: PartitionRef) -> KafkaConsumer:
        consumer = self.consumers.get(ref)
        if consumer is None:
            consumer = _consumer(self.settings, None)
            consumer.assign([ref.tp])
            self.consumers[ref] = consumer
        return consumer

    def process(
        self,
        ref: PartitionRef,
        # Beam's way of asking for the tracker and the estimator: defaults it replaces.
        tracker: Any = beam.DoFn.RestrictionParam(),  # noqa: B008
        watermark: Any = beam.DoFn.WatermarkEstimatorParam(  # noqa: B008
            WATERMARKS),
    ) -> Iterator[TimestampedValue[KafkaRecord]]:
        position = tracker.current_restriction().start
        consumer = self._consumer_for(ref)
        try:
            if consumer.position(ref.tp) != position:
                consumer.seek(ref.tp, position)
            wait_ms = 0 if self.woken and ref.tp not in self.woken else \
                self.budget.next_timeout_ms()
            batch = consumer.poll(timeout_ms=wait_ms,
                                  max_records=self.max_records).get(ref.tp, [])
        except KafkaError as exc:
            raise KafkaUnavailable(unavailable(self.settings, exc)) from exc
        if not batch:
            _advance(watermark, Timestamp.of(time.time() - self.idle_lag_s))
            self.idle[ref.tp] = consumer.position(ref.tp)
            tracker.defer_remainder()
            return
        self.budget.records_found()
        for msg in batch:
            if msg.offset < position:
                continue  # already claimed before a seek landed earlier
            if not tracker.try_claim(msg.offset):
                return
            stamp = Timestamp.of(msg.timestamp / 1000) if msg.timestamp and msg.timestamp > 0 \
                else Timestamp.now()
            record = RawRecord(key=(msg.key or b"").decode("utf-8", "replace"),
                               payload=msg.value or b"",
                               origin=f"{ref.topic}/{ref.partition}/{msg.offset}")
            yield TimestampedValue(KafkaRecord(record, ref, position, msg.offset),
                                               stamp)
            _advance(watermark, stamp)
            position = msg.offset + 1
        tracker.defer_remainder()

    def initial_restriction(self, ref: PartitionRef) -> OffsetRange:
        consumer = _consumer(self.settings, self.settings.group_id)
        try:
            return OffsetRange(start_offset(consumer, ref.tp), UNBOUNDED)
        except KafkaError as exc:
            raise KafkaUnavailable(unavailable(self.settings, exc)) from exc
        finally:
            consumer.close()

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def split(self, element: PartitionRef, restriction: OffsetRange) -> Iterator[OffsetRange]:
        # A partition is read in order by one reader: never split up front.
        yield restriction

    def restriction_size(self, element: PartitionRef, restriction: OffsetRange) -> int:
        # Unknown (unbounded); a constant keeps runners from weighing the 2**62 end.
        return 1

    def truncate(self, element: PartitionRef, restriction: OffsetRange) -> None:
        # Drain: stop reading; what was not committed is read again by the next run.
        return None

    def teardown(self) -> None:
        for consumer in self.consumers.values():
            consumer.close()
        self.consumers.clear()
        self.bell.close()


class ReadKafkaStream(beam.PTransform[Any, Any]):
    """Pipeline root -> unbounded PCollection of KafkaRecord from the raw topic.

        Create(partitions now) --------------------------------------------+
        PeriodicImpulse -> ListPartitions (added since) -> NewPartitions --+-> ReadPartitions
    """

    def __init__(self, settings: KafkaSettings, *, discover_every_s: float = 30.0,
                 share: WorkerShare = EVERY_PARTITION) -> None:
        super().__init__()
        self.settings = settings
        self.discover_every_s = discover_every_s
        #: Only the partitions of this worker's share (``--worker i/M``) are read.
        self.share = share

    def expand(self, root: Any) -> Any:
        topic = self.settings.raw_topic
        initial = list_partitions(self.settings)
        first = root | "PartitionsAtStart" >> beam.Create(
            [PartitionRef(topic, p) for p in initial if self.share.owns(p)])
        added = (
            root
            | "DiscoverTick" >> PeriodicImpulse(fire_interval=self.discover_every_s)
            | "ListPartitions" >> beam.ParDo(ListPartitionsFn(self.settings,
                                                              frozenset(initial), self.share))
            | "NewPartitions" >> beam.ParDo(NewPartitionsFn())
        )
        return (
            (first, added)
            | "Partitions" >> beam.Flatten()
            | "ReadPartitions" >> beam.ParDo(ReadPartitionsFn(self.settings))
        )
