"""Alert rules (config/alerts.yaml) as typed, validated models; the channels' models are in
channels/, one module per channel type."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import Field, model_validator

from newsmon.config import MAX_PERIOD_S, StrictModel
from newsmon.pipeline.alerts.channels import ChannelConfig, ChannelConfigBase
from newsmon.pipeline.alerts.channels.console import ConsoleChannel
from newsmon.pipeline.alerts.sources import CorroborationRule

__all__ = ["AlertRule", "AlertsConfig", "ChannelConfig", "SurgeRule", "unknown_alert_topics"]


class _RuleBase(StrictModel):
    name: str
    topic: str
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    channels: tuple[str, ...] = ("console",)
    #: At most one delivery per channel per window of this many seconds (0: no throttle);
    #: alerts held back are kept on the alert and the window's throttle document.
    throttle_s: int = Field(default=0, ge=0, le=MAX_PERIOD_S)


class AlertRule(_RuleBase):
    """A story alert: the first article of a story whose topic score reaches ``threshold``."""

    threshold: float = Field(default=1.0, ge=0)
    #: Hold notifications until independent sources corroborate the story (sources.py);
    #: none: notify on the first copy.
    corroboration: CorroborationRule | None = None


class SurgeRule(_RuleBase):
    """A surge alert: a topic's article count in the current interval against its baseline,
    the mean and standard deviation of the ``baseline_intervals`` intervals before it."""

    interval_s: int = Field(default=3600, ge=60, le=MAX_PERIOD_S // 24)
    baseline_intervals: int = Field(default=24, ge=2, le=24 * 30)
    #: How many standard deviations above the mean count as a surge.
    k: float = Field(default=3.0, ge=0)
    #: Never alert below this many articles in the interval, whatever the baseline.
    min_count: int = Field(default=5, ge=1)
    #: No surge until this many of the baseline intervals hold at least one stored article
    #: (of any topic: the monitor was collecting then). On a fresh index every baseline is
    #: "0 articles" and the first few articles would be a surge. None: half of
    #: ``baseline_intervals``, rounded up; 0: no history needed.
    min_history_intervals: int | None = Field(default=None, ge=0, le=24 * 30)

    @model_validator(mode="after")
    def _history_fits(self) -> SurgeRule:
        if (self.min_history_intervals or 0) > self.baseline_intervals:
            raise ValueError(f"min_history_intervals ({self.min_history_intervals}) cannot be "
                             f"more than baseline_intervals ({self.baseline_intervals})")
        return self

    @property
    def history_needed(self) -> int:
        """Baseline intervals with data needed before this rule may raise a surge."""
        if self.min_history_intervals is None:
            return -(-self.baseline_intervals // 2)
        return self.min_history_intervals


def _console_only() -> dict[str, ChannelConfigBase]:
    return {"console": ConsoleChannel()}


class AlertsConfig(StrictModel):
    channels: dict[str, ChannelConfig] = Field(default_factory=_console_only)
    rules: tuple[AlertRule, ...] = ()
    surges: tuple[SurgeRule, ...] = ()
    #: A delivery still failing this long after the alert was raised is given up (recorded).
    give_up_after_s: int = Field(default=24 * 3600, gt=0, le=MAX_PERIOD_S)
    #: After a failed delivery, the channel is not tried again for this alert sooner than this
    #: (the end-of-run sweep right after a failure would only fail again).
    retry_after_s: int = Field(default=60, ge=0, le=MAX_PERIOD_S)
    #: How long a deliverer holds an alert before another may take it over (a crash between
    #: sending and recording then means one repeated message, never a lost one).
    lease_s: int = Field(default=300, gt=0, le=MAX_PERIOD_S)
    #: An article published (undated: first seen) longer ago than this when the pipeline
    #: handles it is stored, but neither raises nor updates an alert: a newly added feed's
    #: archive, a backfill or a late replay is not news. 0: no limit.
    max_article_age_s: int = Field(default=48 * 3600, ge=0, le=MAX_PERIOD_S)

    def too_old(self, published_at: datetime, now: datetime) -> bool:
        """Is an article published at ``published_at`` past the age that may alert?"""
        return (self.max_article_age_s > 0
                and now - published_at > timedelta(seconds=self.max_article_age_s))

    @model_validator(mode="after")
    def _consistent(self) -> AlertsConfig:
        # One "dotted.key: problem" per line: configfile.validate reports them under their keys.
        problems = []
        first: dict[str, str] = {}
        for key, rule in self.keyed_rules():
            if rule.name in first:
                problems.append(f"{key}.name: rule names must be unique: {rule.name} "
                                f"(first at {first[rule.name]})")
            first.setdefault(rule.name, key)
            unknown = [c for c in rule.channels if c not in self.channels]
            if unknown:
                problems.append(f"{key}.channels: unknown channel {', '.join(unknown)} "
                                f"(rule {rule.name}; channels are: {', '.join(self.channels)})")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def keyed_rules(self) -> list[tuple[str, AlertRule | SurgeRule]]:
        """Every rule with its dotted key in the file (``rules.0``, ``surges.1``)."""
        keyed: list[tuple[str, AlertRule | SurgeRule]] = [
            (f"rules.{i}", r) for i, r in enumerate(self.rules)]
        keyed += [(f"surges.{i}", r) for i, r in enumerate(self.surges)]
        return keyed

    def rule(self, name: str) -> AlertRule | SurgeRule | None:
        for rule in self.rules:
            if rule.name == name:
                return rule
        return next((r for r in self.surges if r.name == name), None)


def unknown_alert_topics(alerts: AlertsConfig, topics: Iterable[str], path: Path) -> list[str]:
    """Alert rules for a topic the rule file does not define (they could never fire)."""
    known = set(topics)
    return [f"{path}: {key}.topic: unknown topic {rule.topic!r} (topics are: "
            f"{', '.join(sorted(known))})" for key, rule in alerts.keyed_rules()
            if rule.topic not in known]
