"""Stream mode's commit stage: a partition's offsets move only over what the store acknowledged.

Each record read has exactly one outcome that the search server acknowledges: its article
written (or found to be an exact copy of a written one), or its dead letter written. The
stages do not carry Kafka offsets, so the commit stage joins by *lineage*, a key that both
ends can compute from content:

- a record whose payload decodes to a RawItem: ``item:<item_id>:<revision>`` (articles and the
  dead letters of the later stages carry both fields);
- a record that does not decode: ``raw:<hash of the payload>`` (its decode dead letter holds
  the payload).

Two stateful steps follow the writes:

1. ``MatchAcknowledgedFn``, keyed by lineage, pairs each record read with one acknowledgement
   and emits the record's place in its partition (``before -> offset + 1``);
2. ``CommitOffsetsFn``, keyed by partition, holds the acknowledged places and commits, with
   the consumer group, the end of the contiguous prefix from where the group stood, when a
   processing-time timer fires (every ``every_s`` while places arrive).

State is lost with the process (``kill -9``): then nothing after the last commit counts as
done, the restart reads it again, and content-derived ids make the repeated writes no-ops.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder, VarIntCoder
from apache_beam.pvalue import PCollection, TaggedOutput
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.utils.timestamp import Timestamp
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from newsmon.config import KafkaSettings
from newsmon.kafka import KafkaUnavailable
from newsmon.models import DeadLetter, RawItem, content_id
from newsmon.pipeline.io_kafka import _consumer
from newsmon.pipeline.kafka_source import KafkaRecord, start_offset
from newsmon.pipeline.stages.dead_letters import WriteDeadLettersFn
from newsmon.pipeline.stages.store import Placed

log = logging.getLogger(__name__)

#: The tag of the written dead letters (ParkDeadLetters' second output).
WRITTEN_LETTERS = "written_letters"


def _item_lineage(item_id: str, revision: str) -> str:
    return f"item:{item_id}:{revision}"


def _raw_lineage(payload_text: str) -> str:
    return f"raw:{content_id('raw', payload_text)}"


def lineage_of_record(payload: bytes) -> str:
    """The lineage of a raw record, decided as the decode stage decides (same parser)."""
    try:
        item = RawItem.from_json(payload)
    except ValueError:
        return _raw_lineage(payload.decode("utf-8", "replace"))
    return _item_lineage(item.item_id, item.revision)


def lineage_of_placed(placed: Placed) -> str:
    return _item_lineage(placed.article.item_id, placed.article.revision)


def lineage_of_letter(letter: DeadLetter) -> str | None:
    """The lineage of the record a dead letter parks; None for letters that park no record
    (none of the per-record stages makes those, but the index is shared)."""
    if letter.stage == "decode":
        return _raw_lineage(letter.payload)
    try:
        doc = json.loads(letter.payload)
    except ValueError:
        return None
    if isinstance(doc, dict) and "item_id" in doc and "revision" in doc:
        return _item_lineage(str(doc["item_id"]), str(doc["revision"]))
    return None


class WriteDeadLettersAckFn(WriteDeadLettersFn):
    """The dead-letter write, which also says which letters the store acknowledged (on
    ``WRITTEN_LETTERS``): the commit stage counts a parked record as done only then."""

    def process(self, batch: Sequence[DeadLetter]) -> Iterator[Any]:
        yield from super().process(batch)
        for letter in batch:
            yield TaggedOutput(WRITTEN_LETTERS, letter)


def _lineages_of_letter(letter: DeadLetter) -> list[str]:
    lineage = lineage_of_letter(letter)
    return [] if lineage is None else [lineage]


class Acknowledged(beam.PTransform[tuple[PCollection[Any], PCollection[Any]], PCollection[str]]):
    """(written batches of Placed, written dead letters) -> the lineage of every record whose
    outcome the store acknowledged."""

    def expand(self, inputs: tuple[PCollection[Any], PCollection[Any]]) -> PCollection[str]:
        written, letters = inputs
        from_articles = written | "LineageOfWritten" >> beam.FlatMap(
            lambda batch: [lineage_of_placed(p) for p in batch])
        from_letters = letters | "LineageOfLetters" >> beam.FlatMap(_lineages_of_letter)
        acks: PCollection[str] = (from_articles, from_letters) | "Flatten" >> beam.Flatten()
        return acks


#: Where a record sits in its partition: (before, offset + 1).
Place = tuple[int, int]
READ, ACK = "read", "ack"


class MatchAcknowledgedFn(beam.DoFn):
    """(lineage, (READ, (partition, place)) | (ACK, None)) -> (partition, place) once the
    record of that lineage was read and acknowledged. Reads and acknowledgements pair one to
    one; the state of a lineage is empty again once they balance.

    Bags rather than one read-modify-write value: on Prism such a value lost updates between
    bundles of the same key (seen in NewPartitions and in a first CommitOffsets).
    """

    READS = BagStateSpec("reads", PickleCoder())
    ACKS = BagStateSpec("acks", VarIntCoder())

    def process(self, element: tuple[str, tuple[str, Any]],
                reads_state: Any = beam.DoFn.StateParam(READS),  # noqa: B008
                acks_state: Any = beam.DoFn.StateParam(ACKS),  # noqa: B008
                ) -> Iterator[tuple[str, Place]]:
        lineage, (kind, value) = element
        reads = list(reads_state.read())
        acks = sum(acks_state.read())
        if kind == READ:
            reads.append(value)
        else:
            acks += 1
        log.debug("match %s: %s %s (%d reads, %d acks)", lineage, kind, value, len(reads), acks)
        paired = min(len(reads), acks)
        if not paired:  # nothing to pair yet: just keep this one
            if kind == READ:
                reads_state.add(value)
            else:
                acks_state.add(1)
            return
        reads_state.clear()
        acks_state.clear()
        for left in reads[paired:]:
            reads_state.add(left)
        if acks > paired:
            acks_state.add(acks - paired)
        yield from reads[:paired]


def next_position(position: int, done: dict[int, int]) -> int:
    """The end of the contiguous run of ``done`` places (before -> after) from ``position``;
    the places used are removed from ``done``."""
    while position in done:
        position = done.pop(position)
    return position


class OffsetCommitter:
    """The consumer group's offsets, read and committed through one cached consumer."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.consumer: KafkaConsumer | None = None

    def _client(self) -> KafkaConsumer:
        if self.consumer is None:
            self.consumer = _consumer(self.settings, self.settings.group_id)
        return self.consumer

    def start(self, topic: str, partition: int) -> int:
        try:
            return start_offset(self._client(), TopicPartition(topic, partition))
        except KafkaError as exc:
            raise KafkaUnavailable(f"offsets of {self.settings.group_id}: {exc}") from exc

    def commit(self, topic: str, partition: int, offset: int) -> None:
        tp = TopicPartition(topic, partition)
        try:
            self._client().commit({tp: OffsetAndMetadata(offset, "", -1)})
        except KafkaError as exc:
            raise KafkaUnavailable(f"offset commit to {self.settings.bootstrap_servers}: "
                                   f"{exc}") from exc
        log.info("stream: committed %s/%d at %d for group %s", topic, partition, offset,
                 self.settings.group_id)

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None


class CommitOffsetsFn(beam.DoFn):
    """("topic/partition", place) -> the contiguous prefix of acknowledged places committed.

    ``process`` only appends the place to a bag and sets the flush timer to the next multiple
    of ``every_s``: setting it again to the same time does not postpone it, so a steady flow
    still flushes every ``every_s``. The timer alone reads and rewrites the state.
    """

    PLACES = BagStateSpec("places", PickleCoder())
    COMMITTED = ReadModifyWriteStateSpec("committed", PickleCoder())
    FLUSH = TimerSpec("flush", TimeDomain.REAL_TIME)

    def __init__(self, settings: KafkaSettings, every_s: float = 0.5) -> None:
        super().__init__()
        self.settings = settings
        self.every_s = every_s
        self.committer: OffsetCommitter | None = None

    def setup(self) -> None:
        self.committer = OffsetCommitter(self.settings)

    def teardown(self) -> None:
        if self.committer is not None:
            self.committer.close()

    def process(self, element: tuple[str, Place],
                places: Any = beam.DoFn.StateParam(PLACES),  # noqa: B008
                flush: Any = beam.DoFn.TimerParam(FLUSH),  # noqa: B008
                ) -> Iterator[None]:
        _, place = element
        places.add(place)
        flush.set(Timestamp.of(math.ceil(time.time() / self.every_s) * self.every_s))
        return iter(())

    @on_timer(FLUSH)
    def on_flush(self, key: Any = beam.DoFn.KeyParam,
                 places: Any = beam.DoFn.StateParam(PLACES),  # noqa: B008
                 committed_state: Any = beam.DoFn.StateParam(COMMITTED),  # noqa: B008
                 ) -> Iterable[None]:
        assert self.committer is not None
        topic, partition = str(key).rsplit("/", 1)
        committed = committed_state.read()
        if committed is None:
            committed = self.committer.start(topic, int(partition))
        done = dict(places.read())
        reached = next_position(committed, done)
        if reached != committed:
            self.committer.commit(topic, int(partition), reached)
            committed_state.write(reached)
            places.clear()
            for place in done.items():
                places.add(place)
        elif committed_state.read() is None:
            committed_state.write(committed)
        return ()


class CommitAcknowledged(beam.PTransform[tuple[PCollection[Any], PCollection[str]],
                                         PCollection[None]]):
    """(records read, lineages acknowledged) -> offsets committed (see the module docstring).

        records -> ReadPlaces --+
                                +-> MatchAcknowledged -> CommitOffsets (by partition)
        acks    -> AckPlaces ---+
    """

    def __init__(self, settings: KafkaSettings, every_s: float = 0.5) -> None:
        super().__init__()
        self.settings = settings
        self.every_s = every_s

    def expand(self, inputs: tuple[PCollection[Any], PCollection[str]]) -> PCollection[None]:
        records, acks = inputs

        def read_place(r: KafkaRecord) -> tuple[str, tuple[str, Any]]:
            return (lineage_of_record(r.record.payload),
                    (READ, (r.partition.name, (r.before, r.offset + 1))))

        reads = records | "ReadPlaces" >> beam.Map(read_place)
        acked = acks | "AckPlaces" >> beam.Map(lambda lineage: (lineage, (ACK, None)))
        done: PCollection[None] = (
            (reads, acked)
            | "ReadsAndAcks" >> beam.Flatten()
            | "MatchAcknowledged" >> beam.ParDo(MatchAcknowledgedFn())
            | "CommitOffsets" >> beam.ParDo(CommitOffsetsFn(self.settings, self.every_s))
        )
        return done
