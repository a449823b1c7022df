"""The whole pipeline in one place: ``build_pipeline`` reads top to bottom as the data flows.

    raw records -> DecodeRawItems -> NormalizeArticles -> ClassifyTopics -> BatchArticles
      -> GroupStories -> WriteDocuments -> EvaluateAlerts -> NotifyChannels
      -> FinishRun (surge rules; deliveries still owed from earlier runs)
    every stage's bad items -> WriteDeadLetters (search index, and the Kafka dead-letter topic)

Per-item work comes before anything that waits for a group, so in streaming mode results
appear as items arrive. Stages that talk to the store take batches (one bulk request, one
look-up per batch). Infrastructure errors (store or broker down) raise and fail the run, so
offsets are not committed and a re-run repeats the work; bad input becomes a dead letter.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import PCollection, TaggedOutput

from . import alerting, dedup, metrics
from .alerting import Attempt
from .config import AlertsConfig, Settings
from .delivery import Deliverer
from .io_kafka import KafkaDeadLetterProducer, RawRecord
from .io_search import DocumentStore, open_store
from .models import Alert, Article, DeadLetter, RawItem
from .normalize import normalize_item, text_hash
from .rules import Classifier
from .story_match import StoryFeatures, StoryMatcher
from .surge import evaluate_surges

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Placed:
    """An article after story grouping, with what the store needs to find it again."""

    article: Article
    fingerprint: dedup.Fingerprint
    duplicate_of: str | None


def _count(stage: str, outcome: str, n: int = 1) -> None:
    """Items into or out of a stage, as a Beam counter (read back by the driver, metrics.py)."""
    Metrics.counter(NAMESPACE, metrics.stage_counter(stage, outcome)).inc(n)


def _dead(
    stage: Any, error: BaseException | str, source_id: str, payload: str
) -> TaggedOutput[str, DeadLetter]:
    Metrics.counter(NAMESPACE, metrics.dead_letter_counter(stage)).inc()
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    log.warning("dead letter at %s from source %s: %s", stage, source_id, message)
    return TaggedOutput(
        DEAD, DeadLetter.make(stage=stage, error=message, source_id=source_id, payload=payload)
    )


class _StoreFn(beam.DoFn):
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


# --- per-item stages -------------------------------------------------------------------


class DecodeRawItemsFn(beam.DoFn):
    """RawRecord -> RawItem; undecodable payloads -> dead letters (stage ``decode``)."""

    def __init__(self) -> None:
        super().__init__()

    def process(self, record: RawRecord) -> Iterator[Any]:
        _count("decode", "in")
        try:
            item = RawItem.from_json(record.payload)
        except ValueError as exc:
            yield _dead("decode", exc, record.key or "unknown",
                        record.payload.decode("utf-8", "replace"))
            return
        _count("decode", "out")
        yield item


class NormalizeArticlesFn(beam.DoFn):
    """RawItem -> Article without topics; items that cannot be normalized -> dead letters."""

    def __init__(self) -> None:
        super().__init__()

    def process(self, item: RawItem) -> Iterator[Any]:
        _count("normalize", "in")
        try:
            article = normalize_item(item)
        # Normalization is pure: any exception here means this item's content broke a parser,
        # so it is parked with its error rather than failing the whole run.
        except Exception as exc:  # noqa: BLE001
            yield _dead("normalize", exc, item.source.id, item.model_dump_json())
            return
        _count("normalize", "out")
        yield article


class ClassifyTopicsFn(beam.DoFn):
    """Article -> Article with topics and entities (rules from config/topics.yaml)."""

    def __init__(self, topics_path: Path) -> None:
        super().__init__()
        self.topics_path = topics_path
        self.classifier: Any = None

    def setup(self) -> None:
        from .rules import Classifier

        self.classifier = Classifier.from_path(self.topics_path)

    def process(self, article: Article) -> Iterator[Any]:
        _count("classify", "in")
        try:
            result = self.classifier.classify(article.text, article.lang, title=article.title)
        except Exception as exc:  # noqa: BLE001  # pure matcher: a failure is this input's
            yield _dead("classify", exc, article.source.id, article.model_dump_json())
            return
        for match in result.topics:
            Metrics.counter(NAMESPACE, metrics.topic_counter(match.topic)).inc()
        _count("classify", "out")
        yield article.model_copy(update={"topics": result.topics, "entities": result.entities})


# --- batched stages that talk to the store ----------------------------------------------


def article_document(placed: Placed, indexed_at: datetime) -> dict[str, Any]:
    doc = placed.article.model_dump(mode="json")
    doc["topic_names"] = [t.topic for t in placed.article.topics]
    doc["text_hash"] = placed.fingerprint.text_hash
    doc["lsh_bands"] = placed.fingerprint.bands
    doc["minhash"] = list(placed.fingerprint.signature)
    if placed.fingerprint.features is not None:
        doc["story_keys"] = placed.fingerprint.story_keys
        doc["story_features"] = placed.fingerprint.features.to_doc()
    doc["indexed_at"] = indexed_at.isoformat()
    return doc


#: What story grouping reads back of stored articles (not their text).
_FINGERPRINT_FIELDS = (
    "doc_id", "story_id", "text_hash", "minhash", "first_seen_at", "story_features")


def _fingerprint_of_doc(doc: dict[str, Any]) -> dedup.Fingerprint:
    return dedup.Fingerprint(
        doc_id=doc["doc_id"],
        story_id=doc["story_id"],
        text_hash=doc.get("text_hash", ""),
        signature=tuple(doc.get("minhash") or ()),
        first_seen=str(doc.get("first_seen_at", "")),
        features=StoryFeatures.from_doc(doc.get("story_features")),
    )


class GroupStoriesFn(_StoreFn):
    """Batch of Articles -> batch of Placed: each with the story it belongs to.

    Candidates come from the store (earlier runs) and from an in-memory index of this
    worker's earlier batches (copies in the same run, not yet searchable).
    """

    def setup(self) -> None:
        super().setup()
        self.index = dedup.StoryIndex()
        self.matcher = StoryMatcher(Classifier.from_path(self.ctx.settings.topics))

    def process(self, batch: Sequence[Article]) -> Iterator[list[Placed]]:
        # Earliest first, so within a batch the story is named after its first copy whatever
        # order the runner delivered the copies in (live and backfill then agree).
        _count("group", "in", len(batch))
        batch = sorted(batch, key=lambda a: (a.first_seen_at, a.doc_id))
        fps = []
        for article in batch:
            body = f"{article.title}\n{article.text}"
            fps.append(
                dedup.Fingerprint(
                    doc_id=article.doc_id,
                    story_id=article.story_id,
                    text_hash=text_hash(body),
                    signature=dedup.signature(body),
                    first_seen=article.first_seen_at.isoformat(),
                    features=self.matcher.features(
                        article.text, article.title, article.lang,
                        article.published_at or article.first_seen_at),
                )
            )
        db = self.db()
        known = {doc["doc_id"]: doc for doc in db.find_terms(
            "articles", "doc_id", [fp.doc_id for fp in fps], size=len(fps),
            fields=_FINGERPRINT_FIELDS)}
        bands = sorted({b for fp in fps for b in fp.bands})
        story_keys = sorted({k for fp in fps for k in fp.story_keys})
        stored = [
            _fingerprint_of_doc(d)
            for d in db.find_terms("articles", "lsh_bands", bands, size=500,
                                   fields=_FINGERPRINT_FIELDS)
            + db.find_terms("articles", "text_hash", [fp.text_hash for fp in fps], 500,
                            fields=_FINGERPRINT_FIELDS)
            + db.find_terms("articles", "story_keys", story_keys, 500,
                            fields=_FINGERPRINT_FIELDS)
        ]
        out = []
        for article, fp in zip(batch, fps, strict=True):
            previous = known.get(article.doc_id)
            if previous is not None:
                # The same page again (a re-run, an update): it keeps its story.
                decision = dedup.StoryDecision(previous["story_id"])
            else:
                decision = dedup.decide_story(fp, [*stored, *self.index.candidates(fp)])
            placed_fp = replace(fp, story_id=decision.story_id)
            self.index.add(placed_fp)
            out.append(
                Placed(
                    article.model_copy(update={"story_id": decision.story_id}),
                    placed_fp,
                    decision.duplicate_of,
                )
            )
        _count("group", "out", len(out))
        yield out


class WriteDocumentsFn(_StoreFn):
    """Batch of Placed -> the same batch, once the store acknowledged every document.

    Exact copies of an existing document are not written again. Documents the store
    rejects go to the dead letters; an unreachable store raises.
    """

    def process(self, batch: Sequence[Placed]) -> Iterator[Any]:
        now = self.ctx.now or datetime.now(UTC)
        docs = {
            p.article.doc_id: article_document(p, now) for p in batch if p.duplicate_of is None
        }
        _count("write", "in", len(batch))
        failures = {f.doc_id: f for f in self.db().bulk_write("articles", list(docs.items()))}
        _count("write", "out", len(batch) - len(failures))
        Metrics.counter(NAMESPACE, "documents_written").inc(len(docs) - len(failures))
        Metrics.counter(NAMESPACE, "exact_copies").inc(len(batch) - len(docs))
        for doc_id, failure in failures.items():
            placed = next(p for p in batch if p.article.doc_id == doc_id)
            yield _dead("write", f"HTTP {failure.status}: {failure.error}",
                        placed.article.source.id, placed.article.model_dump_json())
        yield [p for p in batch if p.article.doc_id not in failures]


@dataclass(frozen=True)
class AlertEvent:
    alert: Alert
    #: Channels this alert has not reached yet.
    pending: tuple[str, ...]


class EvaluateAlertsFn(_StoreFn):
    """Batch of Placed -> AlertEvent for alerts that still owe a delivery.

    An alert is created atomically once per rule and story; later copies merge into it with a
    version-guarded write (no script engine needed), so neither copies nor re-runs alert twice.
    """

    def process(self, batch: Sequence[Placed]) -> Iterator[Any]:
        now = self.ctx.now or datetime.now(UTC)
        _count("alerts", "in", len(batch))
        hits = [
            (rule, placed.article, match)
            for placed in batch
            for rule, match in alerting.matching_rules(placed.article, self.ctx.alerts.rules)
        ]
        # The first copy of each story in the batch tries to create its alert; all creations
        # of a batch go in one bulk request. Copies whose alert already existed, and later
        # copies in the batch, merge one by one (rarer, and they need the stored version).
        first: dict[str, tuple[Any, Article, Any]] = {}
        for rule, article, match in hits:
            first.setdefault(Alert.id_for(rule.name, article.story_id), (rule, article, match))
        fresh = {
            alert_id: alerting.new_alert(rule, article, match, now)
            for alert_id, (rule, article, match) in first.items()
        }
        created = self.db().create_many("alerts", [
            (alert_id, {**alerting.alert_document(alert),
                        **alerting.initial_state(first[alert_id][0].channels)})
            for alert_id, alert in fresh.items()
        ])
        for rule, article, match in hits:
            alert_id = Alert.id_for(rule.name, article.story_id)
            if alert_id in created and first[alert_id][1] is article:
                Metrics.counter(NAMESPACE, "alerts_created").inc()
                event: AlertEvent | None = AlertEvent(fresh[alert_id], tuple(rule.channels))
            else:
                event = self._merge(rule, article, match, now)
            if event is not None:
                _count("alerts", "out")
                yield event

    def _merge(
        self, rule: Any, article: Article, match: Any, now: datetime
    ) -> AlertEvent | None:
        fresh = alerting.new_alert(rule, article, match, now)
        for _ in range(10):
            current = self.db().get("alerts", fresh.alert_id)
            if current is None:  # deleted meanwhile by an operator: nothing to merge into
                return None
            existing, _ = alerting.alert_from_document(current.source)
            merged = alerting.merge_alert(existing, article, match, now)
            pending = tuple(alerting.owed(rule.channels, current.source))
            if merged is None:
                return AlertEvent(existing, pending) if pending else None
            # The alert's own fields change; its delivery state (sent, pending...) is kept.
            doc = {**current.source, **alerting.alert_document(merged), "pending": list(pending)}
            if self.db().replace_if("alerts", fresh.alert_id, doc, current.version):
                Metrics.counter(NAMESPACE, "alerts_updated").inc()
                return AlertEvent(merged, pending) if pending else None
        raise RuntimeError(f"alert {fresh.alert_id}: too many concurrent updates")


def _count_delivery(attempt: Attempt) -> None:
    ok = attempt.status == "sent"
    if ok or attempt.status == "failed":
        counter = metrics.delivery_counter(attempt.channel, ok=ok)
    else:  # throttled, expired
        counter = f"delivery.{attempt.channel}.{attempt.status}"
    Metrics.counter(NAMESPACE, counter).inc()


class NotifyChannelsFn(_StoreFn):
    """AlertEvent -> alert id, once the channels the alert owes were tried (delivery.py).

    What is sent is what the stored alert still owes, under a short lease, so the copies of a
    story in one batch, a re-run and the end-of-run sweep never send one alert twice. A
    failing channel is recorded on the alert and stays pending for the next run; retries are
    bounded by the channel's timeout and attempts, so a dead channel never stalls the run.
    """

    def setup(self) -> None:
        super().setup()
        self.deliverer = Deliverer(self.db(), self.ctx.alerts)

    def process(self, event: AlertEvent) -> Iterator[Any]:
        _count("notify", "in")
        for attempt in self.deliverer.deliver(event.alert.alert_id, self.ctx.now):
            _count_delivery(attempt)
        _count("notify", "out")
        yield event.alert.alert_id


class FinishRunFn(_StoreFn):
    """The run's delivery count -> after the last delivery: the surge rules are evaluated on
    what is now indexed (new surges delivered at once), then every alert still owing a
    channel from earlier runs (a channel that was down) is tried again."""

    def process(self, deliveries: int) -> Iterator[int]:
        now = self.ctx.now or datetime.now(UTC)
        deliverer = Deliverer(self.db(), self.ctx.alerts)
        attempts = []
        if self.ctx.alerts.surges:
            self.db().refresh("articles")  # this run's articles count too
            for finding in evaluate_surges(self.db(), self.ctx.alerts, now):
                Metrics.counter(NAMESPACE, "surges").inc()
                attempts += deliverer.deliver(finding.alert_id, now)
        attempts += deliverer.deliver_pending(now)
        for attempt in attempts:
            _count_delivery(attempt)
        yield len(attempts)


class WriteDeadLettersFn(_StoreFn):
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
        _count("dead_letters", "in", len(batch))
        docs = [(dl.dl_id, dl.model_dump(mode="json") | {"replayed": False}) for dl in batch]
        failures = self.db().bulk_write("dead-letters", docs)
        if failures:
            raise RuntimeError(f"dead-letter index rejected {len(failures)}: {failures[0]}")
        if self.producer is not None:
            self.producer.send_all([(dl.source_id, dl.model_dump_json().encode()) for dl in batch])
        _count("dead_letters", "out", len(batch))
        yield len(batch)


# --- the graph --------------------------------------------------------------------------


def build_pipeline(
    records: PCollection[RawRecord], ctx: RunContext
) -> dict[str, PCollection[Any]]:
    """Wire every stage onto a PCollection of :class:`RawRecord`; returns the outputs."""
    settings = ctx.settings
    batch = settings.search.bulk_batch_size
    decoded = records | "DecodeRawItems" >> beam.ParDo(DecodeRawItemsFn()).with_outputs(
        DEAD, main="items"
    )
    normalized = decoded.items | "NormalizeArticles" >> beam.ParDo(
        NormalizeArticlesFn()
    ).with_outputs(DEAD, main="articles")
    classified = normalized.articles | "ClassifyTopics" >> beam.ParDo(
        ClassifyTopicsFn(settings.topics)
    ).with_outputs(DEAD, main="articles")
    placed = (
        classified.articles
        # Batches are flushed at the end of each bundle anyway, so a large minimum costs no
        # latency in streaming and saves round trips to the store in batch runs.
        | "BatchArticles" >> beam.BatchElements(
            min_batch_size=min(100, batch), max_batch_size=batch
        )
        | "GroupStories" >> beam.ParDo(GroupStoriesFn(ctx))
    )
    written = placed | "WriteDocuments" >> beam.ParDo(WriteDocumentsFn(ctx)).with_outputs(
        DEAD, main="batches"
    )
    alerts = written.batches | "EvaluateAlerts" >> beam.ParDo(EvaluateAlertsFn(ctx))
    notified = alerts | "NotifyChannels" >> beam.ParDo(NotifyChannelsFn(ctx))
    finished = (
        notified
        | "OnePerAlert" >> beam.Map(lambda _: 1)
        # A global combine waits for every delivery, and yields 0 for a run without any.
        | "CountNotified" >> beam.CombineGlobally(sum)
        | "FinishRun" >> beam.ParDo(FinishRunFn(ctx))
    )
    dead = (
        (decoded[DEAD], normalized[DEAD], classified[DEAD], written[DEAD])
        | "CollectDeadLetters" >> beam.Flatten()
        | "BatchDeadLetters" >> beam.BatchElements(min_batch_size=1, max_batch_size=batch)
        | "WriteDeadLetters" >> beam.ParDo(WriteDeadLettersFn(ctx))
    )
    return {"written": written.batches, "alerts": alerts, "notified": notified,
            "finished": finished, "dead": dead}


def pipeline_options(runner: str = "FnApiRunner", extra: Sequence[str] = ()) -> PipelineOptions:
    # The runner is always explicit: Beam's default would try to download the Prism runner.
    return PipelineOptions([f"--runner={runner}", *extra])


def run_records(records: Sequence[RawRecord], ctx: RunContext,
                runner: str = "FnApiRunner", extra: Sequence[str] = ()) -> None:
    """Run the pipeline over records already in memory (the embedded default, tests)."""
    with beam.Pipeline(options=pipeline_options(runner, extra)) as p:
        build_pipeline(p | "ReadRawItems" >> beam.Create(list(records)), ctx)
