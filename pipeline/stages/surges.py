"""The surge stages: each surge rule's articles counted in sliding event-time windows, the last
interval of each window judged against the rest (alerts/surge.py), surges stored and delivered.

The same stages run in batch, backfill and stream mode; only when a window fires differs
(app.py, JudgeSurges): with a bounded input every window fires once at the end, in a stream
when the watermark passes its end, early every few seconds before that, and once more for
each late article within the allowed lateness.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import IntervalWindow, TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from newsmon import metrics
from newsmon.models import Article
from newsmon.pipeline.alerts.config import SurgeRule
from newsmon.pipeline.alerts.delivery import Deliverer
from newsmon.pipeline.alerts.surge import admits, interval_floor, judge_window, store_surge
from newsmon.pipeline.stages.alerts import _count_delivery
from newsmon.pipeline.stages.base import StoreFn, count
from newsmon.pipeline.stages.store import Placed

#: What a surge window counts: (rule name, epoch second of the interval an article falls in).
Counted = tuple[str, int]


def event_time(article: Article) -> datetime:
    """An article's event time for the surge windows: its ``published_at`` as normalize left
    it, i.e. the source's date, or when we first saw the item if the source gave none or one
    more than FUTURE_TOLERANCE (10 min) ahead of that (a wrong clock or zone, not the future).
    So a window counts exactly what the store's ``published_at`` counts, and an undated or
    future-dated article lands in the interval it arrived in, never in one not begun yet."""
    return article.published_at


def counts_for(article: Article, rules: Sequence[SurgeRule]) -> list[Counted]:
    """The (rule, interval) pairs an article counts for: rules of one of its topics whose
    filters admit it. Pure."""
    topics = {t.topic for t in article.topics}
    at = event_time(article)
    return [(rule.name, int(interval_floor(at, rule.interval_s).timestamp()))
            for rule in rules
            if rule.topic in topics
            and admits(rule, article.lang, article.source.id, article.source.country)]


class StampEventTimesFn(beam.DoFn):
    """Batch of Placed (written) -> one (rule, interval) per rule an article counts for,
    timestamped with the article's event time (:func:`event_time`)."""

    def __init__(self, rules: Sequence[SurgeRule]) -> None:
        super().__init__()
        self.rules = tuple(rules)

    def process(self, batch: Sequence[Placed]) -> Iterator[TimestampedValue[Counted]]:
        for placed in batch:
            at = Timestamp.from_utc_datetime(event_time(placed.article))
            for counted in counts_for(placed.article, self.rules):
                yield TimestampedValue(counted, at)


class CountPerIntervalFn(beam.CombineFn):
    """Interval starts (epoch seconds) -> how many articles fell in each: a window's counts."""

    def create_accumulator(self) -> dict[int, int]:
        return {}

    def add_input(self, acc: dict[int, int], start: int) -> dict[int, int]:
        acc[start] = acc.get(start, 0) + 1
        return acc

    def merge_accumulators(self, accs: Iterable[dict[int, int]]) -> dict[int, int]:
        merged: dict[int, int] = {}
        for acc in accs:
            for start, n in acc.items():
                merged[start] = merged.get(start, 0) + n
        return merged

    def extract_output(self, acc: dict[int, int]) -> dict[int, int]:
        return acc


class JudgeSurgeWindowFn(StoreFn):
    """(rule, counts of a window) -> the surge alert id, when the window's last interval is a
    surge: stored (created, or its count and stories updated: the id is the rule's and the
    interval's, so a window firing again, early, late or in a re-run never duplicates it) and
    delivered to the channels it still owes.

    A window whose last interval holds none of the rule's articles is skipped: it fired for
    its baseline's articles, and its own interval is judged when it has some. An interval
    that ended longer ago than max_article_age_s does not alert, as its articles do not.
    """

    def process(self, element: tuple[str, dict[int, int]],
                window: Any = beam.DoFn.WindowParam) -> Iterator[str]:
        name, counts = element
        rule = next(r for r in self.ctx.alerts.surges if r.name == name)
        assert isinstance(window, IntervalWindow)
        end = window.end.to_utc_datetime(has_tz=True)
        current = end - timedelta(seconds=rule.interval_s)
        if not counts.get(int(current.timestamp())):
            return
        now = self.ctx.now or datetime.now(UTC)
        if self.ctx.alerts.too_old(end, now):
            return
        self.db().refresh("articles")  # the window's articles were written: count them too
        seen = {datetime.fromtimestamp(s, UTC): n for s, n in counts.items()}
        finding = judge_window(self.db(), rule, end, seen)
        if not finding.stats.surge:
            return
        count(metrics.SURGES_RAISED)
        store_surge(self.db(), finding, now)
        for attempt in Deliverer(self.db(), self.ctx.alerts).deliver(finding.alert_id, now):
            _count_delivery(attempt)
        yield finding.alert_id
