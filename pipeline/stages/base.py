"""What every stage shares: the run's context, counting, parking a failure, the store.

:class:`ParkFailures` is the one place where a per-item stage turns a failure into a dead
letter: a subclass says what its stage is, which exceptions are the input's fault, and how
to transform one item; counting in and out, logging and building the dead letter happen here.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import apache_beam as beam
from apache_beam.coders import typecoders
from apache_beam.metrics.metric import Metrics
from apache_beam.pvalue import TaggedOutput

from newsmon import metrics
from newsmon.config import Settings
from newsmon.models import DeadLetter, Stage
from newsmon.pipeline.alerts.config import AlertsConfig
from newsmon.pipeline.store import DocumentStore, open_store

log = logging.getLogger(__name__)

#: The tag of every stage's dead-letter output.
DEAD = "dead_letters"
NAMESPACE = metrics.NAMESPACE


@dataclass(frozen=True)
class RunContext:
    """What every stage needs, validated once by the caller and pickled to the workers."""

    settings: Settings
    alerts: AlertsConfig
    #: Send dead letters to the Kafka dead-letter topic as well as to the index.
    dead_letters_to_kafka: bool = False
    now: datetime | None = field(default=None)


#: Beam counters by name, one per process, as Beam's own DoFns make theirs once: a counter
#: finds the running bundle's metrics container at each inc(), and making it again for every
#: item (six times an article) was ~1 % of the pipeline's CPU.
_COUNTERS: dict[str, Any] = {}


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to a Beam counter; ``name`` comes from :mod:`newsmon.metrics` (its builders
    and constants), which exports each to Prometheus."""
    counter = _COUNTERS.get(name)
    if counter is None:
        counter = _COUNTERS[name] = Metrics.counter(NAMESPACE, name)
    counter.inc(n)


def dead(stage: Stage, error: BaseException | str, source_id: str,
         payload: str) -> TaggedOutput[str, DeadLetter]:
    """An input ``stage`` could not handle, as a dead letter on the ``DEAD`` output."""
    count(metrics.dead_letter_counter(stage))
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    log.warning("dead letter at %s from source %s: %s", stage, source_id, message)
    return TaggedOutput(
        DEAD, DeadLetter.make(stage=stage, error=message, source_id=source_id, payload=payload)
    )


class ParkFailures(beam.DoFn):
    """A per-item stage whose input-caused failures become dead letters, not a failed run.

    Subclasses set ``stage`` and ``parked`` (the exceptions that mean "this input is bad";
    anything else fails the run) and implement :meth:`transform` and :meth:`identify`.
    """

    stage: ClassVar[Stage]
    parked: ClassVar[tuple[type[Exception], ...]] = (Exception,)

    def transform(self, item: Any) -> Any:
        raise NotImplementedError

    def identify(self, item: Any) -> tuple[str, str]:
        """The item's source id and the payload to park (what replay needs)."""
        raise NotImplementedError

    def process(self, item: Any) -> Iterator[Any]:
        count(metrics.stage_counter(self.stage, "in"))
        try:
            out = self.transform(item)
        except self.parked as exc:
            yield dead(self.stage, exc, *self.identify(item))
            return
        count(metrics.stage_counter(self.stage, "out"))
        yield out


class EstimatedPickleCoder(beam.coders.Coder):
    """Pickle, as Beam's fallback coder, with a size estimate that does not pickle.

    Beam samples the encoded size of every stage's output for a byte-count metric that nothing
    here reads. A PCollection of batches has so few elements that nearly every batch is
    sampled, and the fallback coder estimated one by pickling each article in it, once per
    stage that outputs batches: ~4 % of the batch pipeline's CPU (issue 14). A subclass says
    which type it codes (:meth:`register`) and estimates from what the value holds; what is
    encoded, where a runner encodes at all, is the same pickle as before.
    """

    def encode(self, value: Any) -> bytes:
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Any:
        return pickle.loads(encoded)  # noqa: S301 - what encode() wrote, between our stages

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, value: Any) -> int:
        raise NotImplementedError

    @classmethod
    def register(cls, coded: type) -> None:
        """Beam codes a PCollection whose element type is ``coded`` (or a list of them) with
        this coder."""
        typecoders.registry.register_coder(coded, cls)


class StoreFn(beam.DoFn):
    """Opens the document store once per worker, in setup(), as Beam's own IOs do."""

    def __init__(self, ctx: RunContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.store: DocumentStore | None = None

    def setup(self) -> None:
        self.store = open_store(self.ctx.settings.search, self.ctx.settings.state_dir)

    def teardown(self) -> None:
        if self.store is not None:
            self.store.close()

    # A method, not a property: Beam inspects DoFn attributes with getattr() before setup().
    def db(self) -> DocumentStore:
        assert self.store is not None, "setup() not called"
        return self.store
