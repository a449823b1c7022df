"""Alert rules and channels (config/alerts.yaml) as typed, validated models."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from newsmon.config import MAX_PERIOD_S, StrictModel
from newsmon.values import CONTROL, checked, host_problem, http_url_problem


class ChannelConfig(StrictModel):
    """How alerts reach people: looked up by ``type`` in notify.py.

    Secrets (a webhook token, the SMTP password, the Telegram bot token) are never written
    here: ``secret_env`` names the environment variable that holds them.
    """

    type: Literal["console", "webhook", "slack", "smtp", "telegram"]
    #: webhook / slack: where to POST. telegram: the Bot API base URL.
    url: str | None = None
    #: Name of the environment variable holding this channel's secret (token, password).
    secret_env: str | None = None
    #: smtp: recipients, sender, server, login name; ``tls`` is starttls, ssl or none.
    to: tuple[str, ...] = ()
    sender: str | None = None
    host: str | None = None
    port: int | None = Field(default=None, gt=0, lt=65536)
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    #: telegram: the chat (``@channelname`` or a numeric id) the bot writes to.
    chat_id: str | None = None
    #: One request's time limit, and how many tries one delivery gets before the alert is
    #: left pending for the next run: together they bound how long a dead channel can hold
    #: up the pipeline.
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    attempts: int = Field(default=3, ge=1, le=10)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else checked(http_url_problem(value), value)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        return None if value is None else checked(host_problem(value), value)

    @field_validator("secret_env")
    @classmethod
    def _variable(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
            raise ValueError("must be the name of an environment variable, like NEWSMON_TOKEN")
        return value

    @field_validator("sender", "to")
    @classmethod
    def _addresses(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        # One bare address each: a newline would be a header of its own (injection), and a
        # name or a list in one entry is refused by the server only at delivery time.
        for address in (value,) if isinstance(value, str) else value or ():
            local, at, domain = address.rpartition("@")
            if (not at or not local or CONTROL.search(address) or " " in address
                    or "," in address or host_problem(domain)):
                raise ValueError(f"{address!r} is not an e-mail address (user@example.org)")
        return value

    @field_validator("chat_id")
    @classmethod
    def _chat(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-?[0-9]{1,20})$",
                                              value):
            raise ValueError("must be @channelname or a numeric chat id")
        return value

    @model_validator(mode="after")
    def _complete(self) -> ChannelConfig:
        needs: dict[str, tuple[str, ...]] = {
            "webhook": ("url",), "slack": ("url",), "smtp": ("host", "sender", "to"),
            "telegram": ("chat_id", "secret_env"),
        }
        missing = [f for f in needs.get(self.type, ()) if not getattr(self, f)]
        if missing:
            raise ValueError(f"a {self.type} channel needs {', '.join(missing)}")
        return self


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


class SurgeRule(_RuleBase):
    """A surge alert: a topic's article count in the current interval against its baseline,
    the mean and standard deviation of the ``baseline_intervals`` intervals before it."""

    interval_s: int = Field(default=3600, ge=60, le=MAX_PERIOD_S // 24)
    baseline_intervals: int = Field(default=24, ge=2, le=24 * 30)
    #: How many standard deviations above the mean count as a surge.
    k: float = Field(default=3.0, ge=0)
    #: Never alert below this many articles in the interval, whatever the baseline.
    min_count: int = Field(default=5, ge=1)


class AlertsConfig(StrictModel):
    channels: dict[str, ChannelConfig] = Field(
        default_factory=lambda: {"console": ChannelConfig(type="console")})
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

    @model_validator(mode="after")
    def _consistent(self) -> AlertsConfig:
        # One "dotted.key: problem" per line: config.validate reports them under their keys.
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
