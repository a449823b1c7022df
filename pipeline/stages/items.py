"""The per-item stages: pure work on one item, its failures parked (ParkFailures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from newsmon import metrics
from newsmon.models import Article, RawItem, Stage
from newsmon.pipeline.io_kafka import RawRecord
from newsmon.pipeline.normalize import normalize_item
from newsmon.pipeline.stages.base import EstimatedPickleCoder, ParkFailures, count


class ArticleCoder(EstimatedPickleCoder):
    """Articles between stages (see EstimatedPickleCoder)."""

    #: A pickled article's bytes besides its title and text (source, URLs, times, topics,
    #: entities): ~700 for an unclassified one, ~2,000 for the bench's classified articles.
    OVERHEAD = 1000

    def estimate_size(self, value: Any) -> int:
        return self.OVERHEAD + len(value.title) + len(value.text)

    def to_type_hint(self) -> type:
        return Article


ArticleCoder.register(Article)


class DecodeRawItemsFn(ParkFailures):
    """RawRecord -> RawItem; undecodable payloads -> dead letters (stage ``decode``)."""

    stage: ClassVar[Stage] = "decode"
    parked = (ValueError,)

    def transform(self, record: RawRecord) -> RawItem:
        return RawItem.from_json(record.payload)

    def identify(self, record: RawRecord) -> tuple[str, str]:
        return record.key or "unknown", record.payload.decode("utf-8", "replace")


class NormalizeArticlesFn(ParkFailures):
    """RawItem -> Article without topics; items that cannot be normalized -> dead letters.

    Normalization is pure: any exception means this item's content broke a parser, so it is
    parked with its error rather than failing the whole run.
    """

    stage: ClassVar[Stage] = "normalize"

    def transform(self, item: RawItem) -> Article:
        return normalize_item(item)

    def identify(self, item: RawItem) -> tuple[str, str]:
        return item.source.id, item.model_dump_json()


class ClassifyTopicsFn(ParkFailures):
    """Article -> Article with topics and entities (rules from config/topics.yaml); the
    matcher is pure, so a failure is this input's."""

    stage: ClassVar[Stage] = "classify"

    def __init__(self, topics_path: Path) -> None:
        super().__init__()
        self.topics_path = topics_path
        self.classifier: Any = None

    def setup(self) -> None:
        from newsmon.pipeline.detection import Classifier

        self.classifier = Classifier.shared(self.topics_path)

    def transform(self, article: Article) -> Article:
        result = self.classifier.classify(article.text, article.lang, title=article.title)
        for match in result.topics:
            count(metrics.topic_counter(match.topic))
        return article.model_copy(update={"topics": result.topics, "entities": result.entities})

    def identify(self, article: Article) -> tuple[str, str]:
        return article.source.id, article.model_dump_json()
