"""Alert rules: which articles alert, and how later copies of a story update an alert.

One alert per rule and story (``Alert.id_for``). The first article of a story that crosses a
rule's threshold creates it; later copies merge into it (sources, languages, latest evidence)
instead of alerting again. The same document carries the alert's delivery state (channels
sent, pending, failed, held back by a throttle, and every attempt), which delivery.py updates
(the state itself: state.py). What a message says is content.py's.
Pure logic; the store calls live in app.py, delivery.py and surge.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from newsmon.models import Alert, Article, TopicMatch
from newsmon.pipeline.alerts import sources
from newsmon.pipeline.alerts.config import AlertRule

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
    # Stamped with when the copy was first seen, not the run's clock: live and backfill agree.
    corroboration = sources.corroboration((article.source,), rule.corroboration, None,
                                          article.first_seen_at)
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
        sources=(article.source,),
        corroborated=corroboration.corroborated_at is not None,
        corroboration=corroboration,
        # Time-to-alert: the first copy's times. ``now`` is the alert stage's clock, which runs
        # once the store acknowledged the article's write (the article's own ``indexed_at``,
        # to the millisecond; exactly it when the run's clock is fixed).
        published_at=article.published_at,
        first_seen_at=article.first_seen_at,
        indexed_at=now,
        fed_by=article.fed_by,
    )


def alert_document(alert: Alert) -> JsonDict:
    """The alert's own fields as stored; the delivery state (delivery.py) is kept beside
    them in the same document and is not touched by merges."""
    doc = alert.model_dump(mode="json")
    doc["kind"] = "story"
    doc["source_count"] = len(alert.source_ids)
    doc["source_kinds"] = sorted({s.kind.value for s in alert.sources if s.kind})
    doc["source_countries"] = sorted({s.country for s in alert.sources if s.country})
    doc["sources_line"] = sources.sources_line(alert.sources) if alert.sources else ""
    doc["snippets"] = list(dict.fromkeys(ev.snippet for ev in alert.evidence))
    return doc


def alert_from_document(doc: Mapping[str, Any]) -> tuple[Alert, list[str]]:
    """The Alert in a stored story-alert document, and the channels it reached."""
    fields = {k: v for k, v in doc.items() if k in Alert.model_fields}
    return Alert.model_validate(fields), list(doc.get("notified", ()))


def merge_alert(
    existing: Alert, article: Article, match: TopicMatch, now: datetime,
    rule: AlertRule | None = None,
) -> Alert | None:
    """The alert updated with one more copy of its story, or None if it already has it;
    its sources and corroboration (by ``rule``'s criterion) updated too.

    Returning None for a known document is what makes re-runs and backfills leave alerts as
    they are.
    """
    if article.doc_id in existing.doc_ids:
        return None
    merged_sources = tuple(sources.unique_sources((*existing.sources, article.source)))
    corroboration = sources.corroboration(
        merged_sources, rule.corroboration if rule is not None else None,
        existing.corroboration, article.first_seen_at)
    return existing.model_copy(
        update={
            "sources": merged_sources,
            "corroborated": corroboration.corroborated_at is not None,
            "corroboration": corroboration,
            "doc_ids": (*existing.doc_ids, article.doc_id),
            "source_ids": tuple(sorted({*existing.source_ids, article.source.id})),
            "languages": tuple(sorted({*existing.languages, article.lang})),
            "score": max(existing.score, match.score),
            "evidence": (match.evidence or existing.evidence)[:MAX_EVIDENCE],
            "updated_at": max(existing.updated_at, now),
        }
    )


def notify_after(rule: AlertRule, before: Alert | None, after: Alert,
                 owed: Iterable[str]) -> tuple[list[str], bool]:
    """The channels an alert owes after a change (``before`` None: just created), and
    whether the change is its escalation.

    A rule without corroboration owes what ``owed`` says. One with corroboration owes
    nothing until the alert is corroborated (``notify_before``: what ``owed`` says); the
    change that corroborates it escalates: every channel of the rule is owed once more, even
    one already notified."""
    required = rule.corroboration
    if required is None or (after.corroborated and (before is None or before.corroborated)):
        return sorted(owed), False
    if after.corroborated:
        return sorted(set(rule.channels)), True
    return (sorted(owed) if required.notify_before else []), False


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


def dry_run(rule: AlertRule, articles: Iterable[Article], *,
            too_old: Callable[[datetime, datetime], bool]) -> list[Alert]:
    """The alerts ``rule`` would raise over ``articles``, one per story, merged as the
    pipeline merges them, each stamped with the time its first copy was seen. Pure.

    ``too_old`` is the pipeline's own age check (``AlertsConfig.too_old``): an article it
    finds too old at the time its first copy was seen (when the stream handled it) neither
    raises nor updates an alert here either."""
    alerts: dict[str, Alert] = {}
    for article in sorted(articles, key=lambda a: (a.first_seen_at, a.doc_id)):
        if too_old(article.published_at, article.first_seen_at):
            continue
        for _, match in matching_rules(article, (rule,)):
            current = alerts.get(article.story_id)
            if current is None:
                alerts[article.story_id] = new_alert(rule, article, match,
                                                     article.first_seen_at)
                continue
            merged = merge_alert(current, article, match, article.first_seen_at, rule)
            if merged is not None:
                alerts[article.story_id] = merged
    return sorted(alerts.values(), key=lambda a: (a.created_at, a.alert_id))
