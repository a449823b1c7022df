"""Surge alerts: a topic's volume in the current interval against its moving baseline.

The Europe Media Monitor's way: count a topic's articles per interval (an hour by default),
and alert when the current interval's count is far above what the previous intervals make
usual: above ``mean + k * spread`` of the previous ``baseline_intervals`` counts, and at least
``min_count``. Intervals are aligned to the epoch, so the alert for one topic and interval has
one deterministic id however often the evaluation runs (every firing of a pipeline's surge
window, or `newsmon alerts surge` from a schedule): the first evaluation that sees the surge
creates it, later ones update its count and stories without alerting again.

In a pipeline (batch, stream, backfill alike) the intervals are Beam's sliding event-time
windows (pipeline/stages/surges.py): each window spans one interval and its baseline, and
when it fires (at its end, early every few seconds in a stream, again for a late article)
its last interval is judged here (:func:`judge_window`), on the pipeline's counts and the
store's together. `newsmon alerts surge` judges the interval holding ``now`` from the store.

Counts go by ``published_at`` (the time the articles and the dashboards use), so a backfill
of old items does not look like a surge now.

No surge is raised until the baseline has history: at least ``history_needed`` of its
intervals must hold some stored article, of any topic (the monitor was collecting). On a fresh
index every baseline reads "0 articles", and its first articles would otherwise "surge"
against a usual maximum of 0.0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import fmean, pstdev
from typing import Any

from newsmon.models import content_id
from newsmon.pipeline.alerts.config import AlertsConfig, SurgeRule
from newsmon.pipeline.alerts.state import initial_state, owed
from newsmon.pipeline.store import DocumentStore, parse_time

JsonDict = dict[str, Any]

#: Stories listed on a surge alert: enough to see what drives it.
TOP_STORIES = 5
#: Article fields a surge evaluation reads (never the text).
_FIELDS = ("doc_id", "story_id", "title", "url", "lang", "source", "published_at")


@dataclass(frozen=True)
class SurgeStats:
    count: int
    mean: float
    std: float
    #: The highest count still considered usual: mean + k * spread.
    expected_max: float
    surge: bool
    #: Baseline intervals in which the monitor stored anything (its history).
    history: int = 0


def surge_stats(
    count: int, baseline: Sequence[int], *, k: float, min_count: int,
    history: int | None = None, min_history: int = 0,
) -> SurgeStats:
    """Is ``count`` a surge against the ``baseline`` counts? Pure.

    The spread is the baseline's standard deviation, but at least the square root of its mean:
    article counts vary at least like Poisson counts, and a quiet topic with a flat baseline
    would otherwise "surge" on one extra article. ``history``, the baseline intervals in
    which anything was stored (default: all of them), must reach ``min_history``.
    """
    mean = fmean(baseline) if baseline else 0.0
    std = pstdev(baseline) if len(baseline) > 1 else 0.0
    expected_max = mean + k * max(std, math.sqrt(mean))
    seen = len(baseline) if history is None else history
    return SurgeStats(count, mean, std, expected_max,
                      count >= min_count and count > expected_max and seen >= min_history,
                      seen)


def interval_floor(t: datetime, interval_s: int) -> datetime:
    """The start of the epoch-aligned interval holding ``t``."""
    epoch = int(t.astimezone(UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % interval_s, UTC)


def bucket_counts(
    times: Iterable[datetime], start: datetime, interval_s: int, n: int
) -> list[int]:
    """How many of ``times`` fall in each of the ``n`` intervals from ``start``."""
    counts = [0] * n
    for t in times:
        i = int((t - start).total_seconds() // interval_s)
        if 0 <= i < n:
            counts[i] += 1
    return counts


def admits(rule: SurgeRule, lang: str | None, source_id: str | None,
           country: str | None) -> bool:
    """Do the rule's filters let an article of this language, source and country count?"""
    return (
        (not rule.languages or lang in rule.languages)
        and (not rule.sources or source_id in rule.sources)
        and (not rule.countries or country in rule.countries)
    )


def _passes(doc: Mapping[str, Any], rule: SurgeRule) -> bool:
    source = doc.get("source") or {}
    return admits(rule, doc.get("lang"), source.get("id"), source.get("country"))


@dataclass(frozen=True)
class SurgeFinding:
    rule: SurgeRule
    interval_start: datetime
    stats: SurgeStats
    #: The interval's articles, as stored (only _FIELDS).
    articles: tuple[JsonDict, ...]

    @property
    def alert_id(self) -> str:
        return surge_alert_id(self.rule.name, self.interval_start)


def surge_alert_id(rule: str, interval_start: datetime) -> str:
    return content_id("alert", rule, "surge", interval_start.isoformat())


def _articles(store: DocumentStore, rule: SurgeRule, since: datetime,
              until: datetime) -> list[tuple[datetime, JsonDict]]:
    docs = store.scan("articles", since=since, until=until,
                      terms={"topic_names": [rule.topic]}, fields=_FIELDS)
    return [(parse_time(d["published_at"]), d) for d in docs if _passes(d, rule)]


def _collected(store: DocumentStore, rule: SurgeRule, start: datetime, n: int) -> list[int]:
    """Articles of any topic stored in each of the ``n`` intervals from ``start``: whether the
    monitor was collecting then (only the time field is read)."""
    end = start + n * timedelta(seconds=rule.interval_s)
    times = (parse_time(d["published_at"]) for d in store.scan(
        "articles", since=start, until=end, fields=("published_at",)))
    return bucket_counts(times, start, rule.interval_s, n)


@dataclass(frozen=True)
class History:
    """What the store holds for a rule over ``n`` intervals from ``start``: the rule's
    articles per interval, the articles of any topic per interval (was the monitor collecting),
    and the rule's articles themselves (only _FIELDS) with their times."""

    start: datetime
    counts: list[int]
    collected: list[int]
    rows: list[tuple[datetime, JsonDict]]


def stored_history(store: DocumentStore, rule: SurgeRule, start: datetime, n: int) -> History:
    """The store's :class:`History` of ``rule`` for the ``n`` intervals from ``start``."""
    end = start + n * timedelta(seconds=rule.interval_s)
    rows = _articles(store, rule, start, end)
    counts = bucket_counts((t for t, _ in rows), start, rule.interval_s, n)
    collected = _collected(store, rule, start, n) if rule.history_needed else [1] * n
    return History(start, counts, collected, rows)


def judge(rule: SurgeRule, history: History, i: int,
          seen: Mapping[datetime, int] | None = None) -> SurgeFinding:
    """Interval ``i`` of ``history`` against the ``baseline_intervals`` before it. Pure.

    ``seen``: counts per interval start that the pipeline itself counted (a surge window's);
    each interval counts the larger of that and the store's, so an interval the store has not
    made searchable yet is not under-counted, and one the pipeline saw only part of (a batch
    run of the last minutes, a stream restarted mid-interval) is not either. An interval with
    articles of the rule's topic was collecting, whatever the store says.
    """
    step = timedelta(seconds=rule.interval_s)
    seen = seen or {}
    counts = [max(c, seen.get(history.start + j * step, 0))
              for j, c in enumerate(history.counts)]
    collected = [max(c, n) for c, n in zip(history.collected, counts, strict=True)]
    lo = i - rule.baseline_intervals
    stats = surge_stats(counts[i], counts[lo:i], k=rule.k, min_count=rule.min_count,
                        history=sum(1 for c in collected[lo:i] if c),
                        min_history=rule.history_needed)
    begin = history.start + i * step
    docs = tuple(d for t, d in history.rows if begin <= t < begin + step)
    return SurgeFinding(rule, begin, stats, docs)


def timeline(
    store: DocumentStore, rule: SurgeRule, since: datetime, now: datetime
) -> list[SurgeFinding]:
    """Every interval from ``since`` to the one holding ``now``, each judged against its own
    baseline (for dry runs and `newsmon alerts test`)."""
    step = timedelta(seconds=rule.interval_s)
    first = interval_floor(since, rule.interval_s)
    current = interval_floor(now, rule.interval_s)
    span = int((current - first) / step) + 1
    start = first - rule.baseline_intervals * step
    history = stored_history(store, rule, start, rule.baseline_intervals + span)
    return [judge(rule, history, i)
            for i in range(rule.baseline_intervals, rule.baseline_intervals + span)]


def window_shape(rule: SurgeRule) -> tuple[int, int]:
    """(size, period) in seconds of the rule's sliding event-time windows: a window spans the
    baseline and the interval judged, its last; a new one starts every interval."""
    return (rule.baseline_intervals + 1) * rule.interval_s, rule.interval_s


#: How long a surge window takes late articles when max_article_age_s is 0 (no age limit).
DEFAULT_LATENESS_S = 2 * 24 * 3600


def allowed_lateness_s(config: AlertsConfig) -> int:
    """How long after its end a surge window still takes late articles (and fires again):
    as long as an article may still alert at all (max_article_age_s), else two days."""
    return config.max_article_age_s or DEFAULT_LATENESS_S


def judge_window(store: DocumentStore, rule: SurgeRule, window_end: datetime,
                 seen: Mapping[datetime, int]) -> SurgeFinding:
    """The last interval of the surge window ending at ``window_end``, judged on the larger
    of the pipeline's counts ``seen`` (per interval start) and the store's (see judge)."""
    step = timedelta(seconds=rule.interval_s)
    start = window_end - (rule.baseline_intervals + 1) * step
    history = stored_history(store, rule, start, rule.baseline_intervals + 1)
    return judge(rule, history, rule.baseline_intervals, seen)


def evaluate(store: DocumentStore, rule: SurgeRule, now: datetime) -> SurgeFinding:
    """The interval holding ``now`` against the ``baseline_intervals`` before it."""
    return timeline(store, rule, now, now)[-1]


def top_stories(articles: Iterable[Mapping[str, Any]], n: int = TOP_STORIES) -> list[JsonDict]:
    """The interval's biggest stories: copies counted per story, the earliest copy shown."""
    by_story: dict[str, list[Mapping[str, Any]]] = {}
    for doc in sorted(articles, key=lambda d: (str(d.get("published_at")), d["doc_id"])):
        by_story.setdefault(str(doc.get("story_id") or doc["doc_id"]), []).append(doc)
    ranked = sorted(by_story.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:n]
    return [{"story_id": sid, "title": docs[0].get("title", ""), "url": docs[0].get("url", ""),
             "count": len(docs)} for sid, docs in ranked]


def surge_document(finding: SurgeFinding, now: datetime) -> JsonDict:
    """The alert document of a surge (kind ``surge``), without delivery state."""
    rule, stats = finding.rule, finding.stats
    end = finding.interval_start + timedelta(seconds=rule.interval_s)
    stories = top_stories(finding.articles)
    sources = Counter(str((d.get("source") or {}).get("id", "")) for d in finding.articles)
    return {
        "alert_id": finding.alert_id,
        "kind": "surge",
        "rule": rule.name,
        "topic": rule.topic,
        "title": (f"surge: {rule.topic}: {stats.count} articles from "
                  f"{finding.interval_start:%Y-%m-%d %H:%M} UTC "
                  f"(usually up to {stats.expected_max:.1f})"),
        "url": stories[0]["url"] if stories else "",
        # How far above the usual maximum: comparable across topics.
        "score": round(stats.count / max(stats.expected_max, 1.0), 3),
        "doc_ids": sorted(d["doc_id"] for d in finding.articles)[:100],
        "source_ids": sorted(s for s in sources if s),
        "source_count": len([s for s in sources if s]),
        "languages": sorted({str(d.get("lang")) for d in finding.articles if d.get("lang")}),
        "evidence": [],
        "interval_start": finding.interval_start.isoformat(),
        "interval_end": end.isoformat(),
        "count": stats.count,
        "baseline_mean": round(stats.mean, 3),
        "baseline_std": round(stats.std, 3),
        "expected_max": round(stats.expected_max, 3),
        "top_stories": stories,
        "snippets": [f"{st['count']}× {st['title']}" for st in stories],
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
    }


def store_surge(store: DocumentStore, finding: SurgeFinding, now: datetime) -> list[str]:
    """Create the surge alert, or update its count and stories; returns the channels it
    still owes (empty when nothing is to be delivered)."""
    doc = surge_document(finding, now)
    channels = finding.rule.channels
    if store.create("alerts", finding.alert_id, {**doc, **initial_state(channels)}):
        return list(channels)
    for _ in range(10):
        current = store.get("alerts", finding.alert_id)
        if current is None:
            return []
        pending = owed(channels, current.source)
        keep = {"created_at": current.source.get("created_at", doc["created_at"])}
        if current.source.get("count", 0) >= doc["count"]:
            return pending  # nothing new to record (a re-run sees the same or fewer)
        merged = {**current.source, **doc, **keep, "pending": pending}
        if store.replace_if("alerts", finding.alert_id, merged, current.version):
            return pending
    raise RuntimeError(f"surge alert {finding.alert_id}: too many concurrent updates")


def evaluate_surges(
    store: DocumentStore, config: AlertsConfig, now: datetime
) -> list[SurgeFinding]:
    """Evaluate every surge rule at ``now`` and store the surges; returns them."""
    found = []
    for rule in config.surges:
        finding = evaluate(store, rule, now)
        if finding.stats.surge:
            store_surge(store, finding, now)
            found.append(finding)
    return found
