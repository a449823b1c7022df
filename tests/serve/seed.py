"""Alerts and articles as the pipeline writes them, for the inbox tests: three stories, one
with three copies from two sources in two languages, one ten days old."""

from __future__ import annotations

from datetime import datetime, timedelta

from newsmon.models import Article, Evidence, SourceRef, TopicMatch
from newsmon.pipeline.alerts import rules as alerting
from newsmon.pipeline.alerts import state
from newsmon.pipeline.alerts.config import AlertRule
from newsmon.pipeline.store import DocumentStore

RULES = {"strikes": AlertRule(name="strikes", topic="long_range_strike", channels=("spy",)),
         "troops": AlertRule(name="troops", topic="troop_deployment", channels=("spy",))}


def article(n: int, story: str, source: str, lang: str, topic: str, title: str,
            at: datetime) -> Article:
    match = TopicMatch(topic=topic, score=2.5, groups=("WEAPON",), evidence=(
        Evidence(group="WEAPON", term="missile", start=0, end=7,
                 snippet=f"missile strike reported near the border, copy {n}"),))
    return Article(doc_id=f"doc{n}", item_id=f"item{n}", revision="r1", story_id=story,
                   source=SourceRef(id=source, type="rss", name=f"Paper {source}",
                                    country="DE" if lang == "de" else "GB", lang=lang),
                   url=f"https://news.example/{n}", title=title,
                   text=f"Body of article {n}: a missile strike was reported.", lang=lang,
                   published_at=at - timedelta(minutes=30), first_seen_at=at,
                   topics=(match,))


def seed(store: DocumentStore, now: datetime) -> dict[str, str]:
    """Write the articles and the alerts; returns story name -> alert id."""
    t1 = now - timedelta(hours=5)
    copies = [
        article(1, "story-a", "src-a", "en", "long_range_strike", "Missiles hit depot", t1),
        article(2, "story-a", "src-b", "de", "long_range_strike", "Raketen treffen Depot",
                t1 + timedelta(minutes=20)),
        article(3, "story-a", "src-b", "de", "long_range_strike", "Depot getroffen",
                t1 + timedelta(minutes=50)),
        article(4, "story-b", "src-c", "en", "troop_deployment", "Troops move north",
                now - timedelta(hours=2)),
        article(5, "story-c", "src-a", "en", "long_range_strike", "Old strike report",
                now - timedelta(days=10)),
    ]
    docs = []
    for a in copies:
        doc = a.model_dump(mode="json")
        doc["topic_names"] = [t.topic for t in a.topics]
        docs.append((a.doc_id, doc))
    assert not store.bulk_write("articles", docs)
    ids = {}
    for name, first, more, rule in (("a", copies[0], copies[1:3], RULES["strikes"]),
                                    ("b", copies[3], [], RULES["troops"]),
                                    ("c", copies[4], [], RULES["strikes"])):
        alert = alerting.new_alert(rule, first, first.topics[0], first.first_seen_at)
        doc = {**alerting.alert_document(alert), **state.initial_state(rule.channels)}
        if more:
            doc["doc_ids"] = [first.doc_id, *(m.doc_id for m in more)]
            doc["source_ids"] = sorted({first.source.id, *(m.source.id for m in more)})
            doc["languages"] = sorted({first.lang, *(m.lang for m in more)})
            doc["source_count"] = len(doc["source_ids"])
        assert store.create("alerts", alert.alert_id, doc)
        ids[name] = alert.alert_id
    store.refresh("alerts")
    store.refresh("articles")
    return ids
