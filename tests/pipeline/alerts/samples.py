"""A story alert and its article documents as the pipeline stores them: articles classified
by the real classifier with the shipped rules (config/topics.yaml), so evidence offsets,
entities and the attribute are what the matcher really gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from newsmon.models import Article, SourceRef, TopicMatch
from newsmon.pipeline.alerts import rules as alerting
from newsmon.pipeline.alerts.config import AlertRule
from newsmon.pipeline.detection.matcher import Classifier
from newsmon.pipeline.detection.schema import load_rules

TOPICS = Path(__file__).resolve().parents[3] / "config" / "topics.yaml"
T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
TOPIC = "long_range_strike"
RULE = AlertRule(name="lrs", topic=TOPIC, threshold=1.0, channels=("hook",))

TITLE = "Britain allows Ukraine to use Storm Shadow missiles on Russian territory"
# Written for these tests: a title line repeated at the top of the body (as many feeds do),
# a sentence with the same words as another, and a long last sentence.
BODY = (
    f"{TITLE}\n"
    "London has given Kyiv permission to strike targets inside Russia with Storm Shadow "
    "long-range missiles, officials said on Tuesday. The decision follows weeks of talks. "
    "President Zelensky had asked for the ATACMS and Storm Shadow missiles to be cleared for "
    "deep strikes. London has given Kyiv permission to strike targets inside Russia with "
    "Storm Shadow long-range missiles, officials said on Tuesday. " + "Analysts in several "
    "capitals " * 12 + "said the missiles could reach airfields far behind the front line."
)
COPY_BODY = ("Die Regierung in London erlaubt der Ukraine, Storm-Shadow-Raketen gegen Ziele in "
             "Russland einzusetzen.")


@cache
def classifier() -> Classifier:
    return Classifier(load_rules(TOPICS))


def article(n: int, *, source: str, name: str, lang: str = "en", title: str = TITLE,
            body: str = BODY, seen: datetime = T0) -> Article:
    result = classifier().classify(body, lang, title=title)
    return Article(doc_id=f"doc{n}", item_id=f"item{n}", revision="r1", story_id="story1",
                   source=SourceRef(id=source, type="rss", name=name, country="GB"),
                   url=f"https://news.example/{n}", title=title, text=body, lang=lang,
                   published_at=seen - timedelta(minutes=20), first_seen_at=seen,
                   topics=result.topics, entities=result.entities)


def article_doc(art: Article, **labels: str) -> dict[str, Any]:
    """The stored document; ``labels`` (source_kind, source_country, source_owner) as the
    source-labels work adds them."""
    return {**art.model_dump(mode="json"), **labels}


def story() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A one-source story alert document and its article documents."""
    first = article(1, source="bbc", name="BBC News")
    match = first.topic(TOPIC)
    assert match is not None, "the sample must match its topic"
    alert = alerting.new_alert(RULE, first, match, T0)
    docs = [article_doc(first, source_kind="public broadcaster", source_country="GB",
                        source_owner="BBC")]
    return alerting.alert_document(alert), docs


def grown_story() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The same story after a German copy from a second source merged into it."""
    doc, docs = story()
    alert, _ = alerting.alert_from_document(doc)
    copy = article(2, source="dw", name="Deutsche Welle", lang="de",
                   title="London erlaubt Storm-Shadow-Einsatz", body=COPY_BODY,
                   seen=T0 + timedelta(hours=1))
    match = copy.topic(TOPIC) or TopicMatch(topic=TOPIC, score=alert.score)
    merged = alerting.merge_alert(alert, copy, match, T0 + timedelta(hours=1))
    assert merged is not None
    return {**doc, **alerting.alert_document(merged)}, [*docs, article_doc(copy)]
