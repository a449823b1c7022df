"""Alert rules: which articles alert, and how later copies of a story update an alert.

One alert per rule and story (``Alert.id_for``). The first article of a story that crosses a
rule's threshold creates it; later copies merge into it (sources, languages, latest evidence)
instead of alerting again. Pure logic; the store calls live in app.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .config import AlertRule
from .models import Alert, Article, TopicMatch

JsonDict = dict[str, Any]

#: Evidence kept on an alert: enough to show why, small enough for a chat message.
MAX_EVIDENCE = 5


def matching_rules(
    article: Article, rules: Iterable[AlertRule]
) -> list[tuple[AlertRule, TopicMatch]]:
    """The rules this article satisfies, with the topic match that satisfied each."""
    out = []
    for rule in rules:
        match = article.topic(rule.topic)
        if match is None or match.score < rule.threshold:
            continue
        if rule.languages and article.lang not in rule.languages:
            continue
        if rule.sources and article.source.id not in rule.sources:
            continue
        if rule.countries and article.source.country not in rule.countries:
            continue
        out.append((rule, match))
    return out


def new_alert(rule: AlertRule, article: Article, match: TopicMatch, now: datetime) -> Alert:
    return Alert(
        alert_id=Alert.id_for(rule.name, article.story_id),
        rule=rule.name,
        topic=rule.topic,
        story_id=article.story_id,
        doc_ids=(article.doc_id,),
        title=article.title,
        url=article.url,
        score=match.score,
        source_ids=(article.source.id,),
        languages=(article.lang,),
        evidence=match.evidence[:MAX_EVIDENCE],
        created_at=now,
        updated_at=now,
    )


def alert_document(alert: Alert, notified: Iterable[str] = ()) -> JsonDict:
    doc = alert.model_dump(mode="json")
    doc["source_count"] = len(alert.source_ids)
    doc["notified"] = sorted(set(notified))
    return doc


def alert_from_document(doc: Mapping[str, Any]) -> tuple[Alert, list[str]]:
    fields = {k: v for k, v in doc.items() if k not in ("source_count", "notified")}
    return Alert.model_validate(fields), list(doc.get("notified", ()))


def merge_alert(
    existing: Alert, article: Article, match: TopicMatch, now: datetime
) -> Alert | None:
    """The alert updated with one more copy of its story, or None if it already has it.

    Returning None for a known document is what makes re-runs and backfills leave alerts as
    they are.
    """
    if article.doc_id in existing.doc_ids:
        return None
    return existing.model_copy(
        update={
            "doc_ids": (*existing.doc_ids, article.doc_id),
            "source_ids": tuple(sorted({*existing.source_ids, article.source.id})),
            "languages": tuple(sorted({*existing.languages, article.lang})),
            "score": max(existing.score, match.score),
            "evidence": (match.evidence or existing.evidence)[:MAX_EVIDENCE],
            "updated_at": max(existing.updated_at, now),
        }
    )


def format_alert(alert: Alert) -> str:
    """A short human message for chat, mail and the console."""
    lines = [
        f"[newsmon] {alert.topic}: {alert.title or alert.url}",
        f"score {alert.score:.2f} · sources {len(alert.source_ids)} ·"
        f" languages {', '.join(alert.languages)}",
        alert.url,
    ]
    snippets = list(dict.fromkeys(ev.snippet for ev in alert.evidence))
    lines.extend(f"  … {snippet} …" for snippet in snippets[:3])
    return "\n".join(lines)
