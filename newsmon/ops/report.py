"""``newsmon report``: one self-contained HTML page with the dashboards' views, for teams
without Kibana: volume per topic over time, per language, per source and per source kind; top
stories; latest alerts with their evidence; source health; dead letters.

Three layers: :func:`collect` reads a window from any store (the embedded SQLite one too);
:func:`summarize` is pure counting; :func:`~newsmon.ops.report_html.render` (report_html.py)
writes HTML with inline CSS and inline SVG.
The page loads nothing: a Content-Security-Policy forbids scripts and every outside resource,
and every text that came from a feed (titles, names, snippets, errors) is HTML-escaped,
because feed titles may carry markup or script. Links go to http(s) addresses only.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from newsmon.ops.report_html import (
    ALL,
    distinct_snippets,
    fmt_time,
    nice_tick,
    render,
    safe_href,
    time_of,
)
from newsmon.pipeline.alerts.state import alert_lags
from newsmon.pipeline.store import DocumentStore
from newsmon.serve.measure import LivePrecision, live_precision

JsonDict = dict[str, Any]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` -> timedelta; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30m, 24h, 7d)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


# --- reading ---------------------------------------------------------------------------------

_ARTICLE_FIELDS = ("doc_id", "story_id", "title", "url", "lang", "source", "published_at",
                   "first_seen_at", "topic_names")
_DEAD_FIELDS = ("dl_id", "stage", "error", "source_id", "created_at")


@dataclass(frozen=True)
class ReportData:
    """The stored documents of one report's window [since, until), as read from ``backend``:
    only the fields the counting needs (``collect``)."""

    since: datetime
    until: datetime
    backend: str
    articles: tuple[JsonDict, ...]
    alerts: tuple[JsonDict, ...]
    dead_letters: tuple[JsonDict, ...]
    sources: tuple[JsonDict, ...]


def collect(store: DocumentStore, since: datetime, until: datetime) -> ReportData:
    """Everything the report shows, read once (only the fields it needs, never texts)."""
    return ReportData(
        since=since,
        until=until,
        backend=store.backend,
        articles=tuple(store.scan("articles", since=since, until=until,
                                  fields=_ARTICLE_FIELDS)),
        alerts=tuple(store.scan("alerts", since=since, until=until)),
        dead_letters=tuple(store.scan("dead-letters", since=since, until=until,
                                      fields=_DEAD_FIELDS)),
        sources=tuple(store.scan("source-health")),
    )


# --- counting (pure) -------------------------------------------------------------------------

#: Bucket sizes for the volume chart: the smallest giving at most MAX_BUCKETS points.
_BUCKETS_S = (900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 72


@dataclass(frozen=True)
class Story:
    """One story of the window as the report lists it: its first copy's title and URL, how
    many copies, from which sources and in which languages."""

    story_id: str
    title: str
    url: str
    topics: tuple[str, ...]
    copies: int
    sources: tuple[str, ...]
    languages: tuple[str, ...]
    first_seen: datetime


@dataclass(frozen=True)
class Report:
    """What the report shows, counted from a ``ReportData`` (pure; rendered as text and HTML)."""

    since: datetime
    until: datetime
    backend: str
    bucket_s: int
    bucket_starts: tuple[datetime, ...]
    #: topic -> articles per bucket; "all articles" first.
    volume: dict[str, list[int]]
    #: (label, all articles, articles with a topic), largest first.
    by_language: list[tuple[str, int, int]]
    by_source: list[tuple[str, int, int]]
    stories: list[Story]
    alerts: list[JsonDict]
    dead_by_stage: list[tuple[str, int]]
    dead_latest: list[JsonDict]
    sources: list[JsonDict]
    totals: dict[str, int] = field(default_factory=dict)
    #: The analysts' labels from the inbox over the window's alerts (newsmon/serve/measure.py).
    precision: LivePrecision = field(default_factory=LivePrecision)
    #: (source kind, all articles, on a topic): the labels of feeds.yaml ("unlabelled" for
    #: sources without a kind and articles stored before the labels).
    by_kind: list[tuple[str, int, int]] = field(default_factory=list)
    #: Time-to-alert of the window's notified story alerts, per source kind of their first
    #: copy ("all" first): see :func:`time_to_alert`.
    time_to_alert: list[AlertLatency] = field(default_factory=list)


#: The row of every alert, whatever its source kind.
ALL_KINDS = "all"


@dataclass(frozen=True)
class AlertLatency:
    """Time-to-alert (publication to first notification, seconds) of ``alerts`` alerts."""

    kind: str
    alerts: int
    p50_s: float
    p95_s: float


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0 < q <= 1) of ``values`` by the nearest-rank method: a value that
    occurred (p95 of 10 alerts is the slowest, not an interpolation past it). Pure; raises
    ValueError on no values."""
    if not values:
        raise ValueError("quantile of no values")
    if not 0 < q <= 1:
        raise ValueError(f"quantile {q} is not in (0, 1]")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def time_to_alert(alerts: Iterable[Mapping[str, Any]]) -> list[AlertLatency]:
    """p50 and p95 of time-to-alert (``published_at`` to ``notified_at``) per source kind of
    the alert's first copy ("unlabelled" without one), "all" first then by kind. Alerts not
    notified, surges, and alerts stored before the times are left out. Pure."""
    lags: dict[str, list[float]] = defaultdict(list)
    for doc in alerts:
        if doc.get("kind", "story") != "story":
            continue
        lag = alert_lags(doc).get("publish_to_notified")
        if lag is None:
            continue
        first = (doc.get("sources") or [{}])[0]
        lags[str(first.get("kind") or "unlabelled")].append(lag)
        lags[ALL_KINDS].append(lag)
    return [AlertLatency(kind, len(v), quantile(v, 0.5), quantile(v, 0.95))
            for kind, v in sorted(lags.items(), key=lambda kv: (kv[0] != ALL_KINDS, kv[0]))]


def bucket_size(span: timedelta) -> int:
    seconds = max(span.total_seconds(), 1)
    return next((b for b in _BUCKETS_S if seconds / b <= MAX_BUCKETS), _BUCKETS_S[-1])


def _bars(counter: Counter[str], topical: Counter[str], n: int) -> list[tuple[str, int, int]]:
    return [(label, total, topical[label]) for label, total in
            sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


_STATE_ORDER = {"failing": 0, "disabled": 1, "never-polled": 2, "off": 3, "ok": 4}


def summarize(data: ReportData, *, top: int = 15) -> Report:
    """Count what the page shows. Pure: the same data gives the same report."""
    bucket_s = bucket_size(data.until - data.since)
    epoch = int(data.since.timestamp())
    first = datetime.fromtimestamp(epoch - epoch % bucket_s, UTC)
    n = int((data.until - first).total_seconds() // bucket_s) + 1
    starts = tuple(first + timedelta(seconds=i * bucket_s) for i in range(n))
    volume: dict[str, list[int]] = defaultdict(lambda: [0] * n)
    volume[ALL] = [0] * n
    langs: Counter[str] = Counter()
    langs_topical: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    sources_topical: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    kinds_topical: Counter[str] = Counter()
    names = {str(s.get("source_id")): str(s.get("name") or s.get("source_id"))
             for s in data.sources}
    stories: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for doc in data.articles:
        stamp = time_of(doc, "published_at")
        topics = [str(t) for t in doc.get("topic_names") or ()]
        if stamp is not None:
            i = int((stamp - first).total_seconds() // bucket_s)
            if 0 <= i < n:
                volume[ALL][i] += 1
                for topic in topics:
                    volume[topic][i] += 1
        lang = str(doc.get("lang") or "?")
        source = doc.get("source") or {}
        source_id = str(source.get("id") or "?")
        names.setdefault(source_id, str(source.get("name") or source_id))
        kind = str(source.get("kind") or "unlabelled")
        langs[lang] += 1
        sources[source_id] += 1
        kinds[kind] += 1
        if topics:
            langs_topical[lang] += 1
            sources_topical[source_id] += 1
            kinds_topical[kind] += 1
            stories[str(doc.get("story_id") or doc.get("doc_id"))].append(doc)
    ranked = []
    for story_id, docs in stories.items():
        docs = sorted(docs, key=lambda d: (str(d.get("first_seen_at")), str(d.get("doc_id"))))
        lead = docs[0]
        ranked.append(Story(
            story_id=story_id,
            title=str(lead.get("title") or ""),
            url=str(lead.get("url") or ""),
            topics=tuple(sorted({str(t) for d in docs for t in d.get("topic_names") or ()})),
            copies=len(docs),
            sources=tuple(sorted({str((d.get("source") or {}).get("id", "")) for d in docs})),
            languages=tuple(sorted({str(d.get("lang") or "?") for d in docs})),
            first_seen=(time_of(lead, "first_seen_at") or time_of(lead, "published_at")
                        or data.since),
        ))
    ranked.sort(key=lambda s: (-len(s.sources), -s.copies, -s.first_seen.timestamp()))
    alerts = sorted(data.alerts, key=lambda a: str(a.get("created_at")), reverse=True)
    dead = Counter(str(d.get("stage")) for d in data.dead_letters)
    health = sorted(data.sources, key=lambda s: (_STATE_ORDER.get(str(s.get("state")), 5),
                                                 str(s.get("source_id"))))
    states = Counter(str(s.get("state")) for s in data.sources)
    topical = sum(1 for d in data.articles if d.get("topic_names"))
    return Report(
        since=data.since,
        until=data.until,
        backend=data.backend,
        bucket_s=bucket_s,
        bucket_starts=starts,
        volume={ALL: volume[ALL], **{k: v for k, v in sorted(volume.items()) if k != ALL}},
        by_language=_bars(langs, langs_topical, top),
        by_source=[(names.get(label, label), total, part)
                   for label, total, part in _bars(sources, sources_topical, top)],
        stories=ranked[:top],
        alerts=alerts[:25],
        precision=live_precision(data.alerts),
        dead_by_stage=sorted(dead.items(), key=lambda kv: (-kv[1], kv[0])),
        dead_latest=sorted(data.dead_letters, key=lambda d: str(d.get("created_at")),
                           reverse=True)[:10],
        sources=health,
        totals={
            "articles": len(data.articles),
            "topical articles": topical,
            "stories on a topic": len(stories),
            "alerts": len(data.alerts),
            "dead letters": len(data.dead_letters),
            "sources ok": states.get("ok", 0),
            "sources failing": states.get("failing", 0) + states.get("disabled", 0),
        },
        by_kind=_bars(kinds, kinds_topical, top),
        time_to_alert=time_to_alert(data.alerts),
    )


def build(store: DocumentStore, since: datetime, until: datetime, *,
          title: str = "newsmon report") -> tuple[str, Report]:
    """Read, count and render; returns the HTML and the counts (for a summary line)."""
    report = summarize(collect(store, since, until))
    hint = ""
    # Only on the embedded store (the demo, whose articles have fixed dates): on a search
    # server this would read every article's date.
    if not report.totals["articles"] and store.backend == "embedded":
        latest = _latest_article(store)
        if latest is not None and latest < since:
            hint = (f"No articles in this window; the newest stored article was published "
                    f"{fmt_time(latest)} UTC. Use --until or a longer --since to see it.")
    return render(report, title=title, hint=hint), report


def _latest_article(store: DocumentStore) -> datetime | None:
    latest = None
    for doc in store.scan("articles", fields=("published_at",)):
        stamp = time_of(doc, "published_at")
        if stamp is not None and (latest is None or stamp > latest):
            latest = stamp
    return latest


__all__ = ["AlertLatency", "Report", "ReportData", "Story", "build", "collect", "distinct_snippets",
           "nice_tick", "parse_duration", "quantile", "render", "safe_href", "summarize",
           "time_to_alert"]
