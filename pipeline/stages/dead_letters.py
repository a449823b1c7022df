"""The dead-letter sink: every stage's parked items, written to the index (and topic)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from newsmon import metrics
from newsmon.models import DeadLetter
from newsmon.pipeline.io_kafka import KafkaDeadLetterProducer
from newsmon.pipeline.stages.base import StoreFn, count


class WriteDeadLettersFn(StoreFn):
    """Batch of DeadLetter -> written to the dead-letter index (and topic). Never dropped:
    if they cannot be written, the run fails and the input is read again."""

    def setup(self) -> None:
        super().setup()
        self.producer = (
            KafkaDeadLetterProducer(self.ctx.settings.kafka)
            if self.ctx.dead_letters_to_kafka
            else None
        )

    def teardown(self) -> None:
        if self.producer is not None:
            self.producer.close()
        super().teardown()

    def process(self, batch: Sequence[DeadLetter]) -> Iterator[int]:
        count(metrics.stage_counter("dead_letters", "in"), len(batch))
        docs = [(dl.dl_id, dl.document()) for dl in batch]
        failures = self.db().bulk_write("dead-letters", docs)
        if failures:
            raise RuntimeError(f"dead-letter index rejected {len(failures)}: {failures[0]}")
        if self.producer is not None:
            self.producer.send_all([(dl.source_id, dl.model_dump_json().encode()) for dl in batch])
        count(metrics.stage_counter("dead_letters", "out"), len(batch))
        yield len(batch)
