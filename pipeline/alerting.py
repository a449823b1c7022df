"""Alert rules: which articles alert, and how later copies of a story update an alert.

One alert per rule and story (``Alert.id_for``). The first article of a story that crosses a
rule's threshold creates it; later copies merge into it (sources, languages, latest evidence)
instead of alerting again. The same document carries the alert's delivery state (channels
sent, pending, failed, held back by a throttle, and every attempt), which delivery.py updates.
Pure logic; the store calls live in app.py, delivery.py and surge.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from newsmon.pipeline.alerts.config import AlertRule
from newsmon.pipeline.notify import Message

from newsmon.models import Alert, Article, TopicMatch

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


def alert_document(alert: Alert) -> JsonDict:
    """The alert's own fields as stored; the delivery state (delivery.py) is kept beside
    them in the same document and is not touched by merges."""
    doc = alert.model_dump(mode="json")
    doc["kind"] = "story"
    doc["source_count"] = len(alert.source_ids)
    doc["snippets"] = list(dict.fromkeys(ev.snippet for ev in alert.evidence))
    return doc


def alert_from_document(doc: Mapping[str, Any]) -> tuple[Alert, list[str]]:
    """The Alert in a stored story-alert document, and the channels it reached."""
    fields = {k: v for k, v in doc.items() if k in Alert.model_fields}
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


def alert_message(alert: Alert) -> Message:
    return Message(subject=f"{alert.topic}: {alert.title or alert.url}", text=format_alert(alert),
                   url=alert.url, data=alert_document(alert))


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


# --- delivery state, kept on the alert document beside the alert's own fields ----------------

DeliveryStatus = Literal["sent", "failed", "throttled", "expired"]

#: Entries kept in an alert's ``deliveries`` list: the latest attempts tell the story.
MAX_DELIVERY_RECORDS = 50


@dataclass(frozen=True)
class Attempt:
    """One channel's outcome for one alert: sent, failed (stays pending), throttled (held back
    by the rule's throttle) or expired (given up after ``give_up_after_s``)."""

    channel: str
    status: DeliveryStatus
    at: datetime
    attempts: int = 0
    error: str = ""

    def as_json(self) -> JsonDict:
        return {"channel": self.channel, "status": self.status, "at": self.at.isoformat(),
                "attempts": self.attempts, "error": self.error[:500]}


def initial_state(channels: Iterable[str]) -> JsonDict:
    """The delivery state of a new alert: every channel of its rule owed."""
    return {"notified": [], "pending": sorted(set(channels)), "failed": [], "throttled": [],
            "deliveries": []}


def owed(channels: Iterable[str], doc: Mapping[str, Any]) -> list[str]:
    """Channels an existing alert still owes: its pending ones and any channel of its rule
    (the rule may have gained one) not yet sent, held back or given up."""
    pending = set(doc.get("pending") or ())
    given_up = set(doc.get("failed") or ()) - pending
    done = set(doc.get("notified") or ()) | set(doc.get("throttled") or ()) | given_up
    return sorted((pending | set(channels)) - done)


def apply_attempts(doc: Mapping[str, Any], attempts: Iterable[Attempt]) -> JsonDict:
    """The document with these outcomes recorded and the delivery lease released. Pure; set
    unions, so recording the same outcome twice changes nothing."""
    out = dict(doc)
    notified = set(doc.get("notified") or ())
    pending = set(doc.get("pending") or ())
    failed = set(doc.get("failed") or ())
    throttled = set(doc.get("throttled") or ())
    records = list(doc.get("deliveries") or ())
    for attempt in attempts:
        if attempt.status == "sent":
            notified.add(attempt.channel)
            pending.discard(attempt.channel)
            failed.discard(attempt.channel)
        elif attempt.status == "throttled":
            throttled.add(attempt.channel)
            pending.discard(attempt.channel)
        elif attempt.status == "failed":
            failed.add(attempt.channel)  # still pending: the next run tries again
        else:
            failed.add(attempt.channel)
            pending.discard(attempt.channel)
        records.append(attempt.as_json())
    out.update(notified=sorted(notified), pending=sorted(pending), failed=sorted(failed),
               throttled=sorted(throttled), deliveries=records[-MAX_DELIVERY_RECORDS:])
    out.pop("lease_until", None)
    return out


# --- dry runs ---------------------------------------------------------------------------------


def articles_from_documents(docs: Iterable[Mapping[str, Any]]) -> list[Article]:
    """Stored article documents back as Articles; documents that are not (a hand-written
    test document, an older schema) are skipped."""
    out = []
    for doc in docs:
        try:
            out.append(Article.model_validate(
                {k: v for k, v in doc.items() if k in Article.model_fields}))
        except ValueError:
            continue
    return out


def dry_run(rule: AlertRule, articles: Iterable[Article]) -> list[Alert]:
    """The alerts ``rule`` would raise over ``articles``, one per story, merged as the
    pipeline merges them, each stamped with the time its first copy was seen. Pure."""
    alerts: dict[str, Alert] = {}
    for article in sorted(articles, key=lambda a: (a.first_seen_at, a.doc_id)):
        for _, match in matching_rules(article, (rule,)):
            current = alerts.get(article.story_id)
            if current is None:
                alerts[article.story_id] = new_alert(rule, article, match,
                                                     article.first_seen_at)
                continue
            merged = merge_alert(current, article, match, article.first_seen_at)
            if merged is not None:
                alerts[article.story_id] = merged
    return sorted(alerts.values(), key=lambda a: (a.created_at, a.alert_id))
