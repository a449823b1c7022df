"""The alert stages: raise or merge alerts, deliver them, and the end-of-run sweep (surges:
stages/surges.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from newsmon import metrics
from newsmon.models import Alert, Article
from newsmon.pipeline.alerts import rules as alerting
from newsmon.pipeline.alerts.delivery import Deliverer
from newsmon.pipeline.alerts.state import Attempt, initial_state, owed
from newsmon.pipeline.stages.base import StoreFn, count
from newsmon.pipeline.stages.store import Placed


@dataclass(frozen=True)
class AlertEvent:
    alert: Alert
    #: Channels this alert has not reached yet.
    pending: tuple[str, ...]


class EvaluateAlertsFn(StoreFn):
    """Batch of Placed -> AlertEvent for alerts that still owe a delivery.

    An alert is created atomically once per rule and story; later copies merge into it with a
    version-guarded write (no script engine needed), so neither copies nor re-runs alert twice.
    """

    def process(self, batch: Sequence[Placed]) -> Iterator[Any]:
        now = self.ctx.now or datetime.now(UTC)
        count(metrics.stage_counter("alerts", "in"), len(batch))
        hits = [
            (rule, placed.article, match)
            for placed in batch
            if not self.ctx.alerts.too_old(placed.article.published_at, now)
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
        # A rule requiring corroboration owes no channel until its alert is corroborated.
        owing = {alert_id: alerting.notify_after(first[alert_id][0], None, alert,
                                                 first[alert_id][0].channels)[0]
                 for alert_id, alert in fresh.items()}
        created = self.db().create_many("alerts", [
            (alert_id, {**alerting.alert_document(alert), **initial_state(owing[alert_id])})
            for alert_id, alert in fresh.items()
        ])
        for rule, article, match in hits:
            alert_id = Alert.id_for(rule.name, article.story_id)
            if alert_id in created and first[alert_id][1] is article:
                count(metrics.ALERTS_CREATED)
                event: AlertEvent | None = (AlertEvent(fresh[alert_id], tuple(owing[alert_id]))
                                            if owing[alert_id] else None)
            else:
                event = self._merge(rule, article, match, now)
            if event is not None:
                count(metrics.stage_counter("alerts", "out"))
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
            merged = alerting.merge_alert(existing, article, match, now, rule)
            if merged is None:
                owes = owed(rule.channels, current.source)
                pending = tuple(alerting.notify_after(rule, existing, existing, owes)[0])
                return AlertEvent(existing, pending) if pending else None
            # The alert's own fields change; its delivery state (sent, pending...) is kept.
            # What is owed is judged on the merged alert: a story that grew owes an update, and
            # an escalation (corroboration met) owes every channel of the rule once more.
            doc = {**current.source, **alerting.alert_document(merged)}
            owes, escalated = alerting.notify_after(rule, existing, merged,
                                                    owed(rule.channels, doc))
            pending = tuple(owes)
            doc["pending"] = list(pending)
            if escalated:
                for key in ("notified", "throttled"):
                    doc[key] = [c for c in doc.get(key) or () if c not in pending]
            if self.db().replace_if("alerts", fresh.alert_id, doc, current.version):
                count(metrics.ALERTS_UPDATED)
                return AlertEvent(merged, pending) if pending else None
        raise RuntimeError(f"alert {fresh.alert_id}: too many concurrent updates")


def _count_delivery(attempt: Attempt) -> None:
    # "ok" rather than "sent": the label value the dashboards have always read.
    status = "ok" if attempt.status == "sent" else attempt.status
    count(metrics.delivery_counter(attempt.channel, status))
    # Time-to-alert of a channel's first message of a story, whichever stage delivered it
    # (the notify stage, or the sweep when it claimed the alert first).
    if attempt.latency is not None:
        latency = attempt.latency
        for lag, seconds in latency.lags:
            for bucket, n in metrics.lag_observation(seconds):
                count(metrics.lag_counter(lag, latency.fed_by, latency.source_kind, bucket), n)


class NotifyChannelsFn(StoreFn):
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
        count(metrics.stage_counter("notify", "in"))
        for attempt in self.deliverer.deliver(event.alert.alert_id, self.ctx.now):
            _count_delivery(attempt)
        count(metrics.stage_counter("notify", "out"))
        yield event.alert.alert_id


class FinishRunFn(StoreFn):
    """The run's delivery count -> after the last delivery: every alert still owing a
    channel from earlier runs (a channel that was down) is tried again. (Surges are judged in
    their own event-time windows, stages/surges.py, not here.)"""

    def process(self, deliveries: int) -> Iterator[int]:
        now = self.ctx.now or datetime.now(UTC)
        attempts = Deliverer(self.db(), self.ctx.alerts).deliver_pending(now)
        for attempt in attempts:
            _count_delivery(attempt)
        yield len(attempts)
