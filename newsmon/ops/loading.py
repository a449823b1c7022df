"""Loading the configuration, once, with every check, for every command that needs it.

:func:`load_all` is the one place that reads the four files together (newsmon.yaml, feeds,
topics, alert rules) and checks them against each other; ``newsmon config check``, ``newsmon
doctor`` and the commands that run the pipeline all call it, so they accept and refuse the
same things. Commands that need less (``poll`` needs no rules) call the single loaders below,
which :func:`load_all` is built from.

Every secret found on the way (the settings' passwords and keys, the values of the alert
channels' ``secret_env`` variables) is registered with the log masking before anything can log
it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsmon import logs
from newsmon.config import Settings, load_checked_settings
from newsmon.configfile import ConfigError, load_model
from newsmon.connectors.feeds import FeedsConfig, load_sources
from newsmon.pipeline.alerts.config import AlertsConfig, unknown_alert_topics
from newsmon.pipeline.detection import RuleSet, load_rules


def load_settings(path: Path | None) -> Settings:
    """newsmon.yaml with the environment, checked (``config.load_checked_settings``), its
    secrets registered; raises ConfigError."""
    settings = load_checked_settings(path)
    logs.register_secrets([settings])
    return settings


def load_alerts(settings: Settings) -> AlertsConfig:
    """The alert rules and channels, the channels' secrets registered; raises ConfigError."""
    alerts = load_model(AlertsConfig, settings.alerts)
    logs.register_secrets([alerts])  # the values of the channels' secret_env variables
    return alerts


def load_feeds(settings: Settings) -> FeedsConfig:
    """The sources (feeds.yaml); raises ConfigError."""
    return load_sources(settings.feeds)


def load_topics(settings: Settings) -> RuleSet:
    """The topic rules (topics.yaml and its terms); raises ConfigError."""
    return load_rules(settings.topics)


@dataclass(frozen=True)
class Loaded:
    """Everything configured. A file that did not load is None and its problems are in
    ``problems`` (one line each, naming the file and key); :meth:`require` turns them into a
    ConfigError."""

    settings: Settings
    feeds: FeedsConfig | None
    rules: RuleSet | None
    alerts: AlertsConfig | None
    problems: tuple[str, ...] = ()

    def require(self) -> Complete:
        """The complete configuration; raises ConfigError with every problem."""
        if self.problems or self.rules is None or self.alerts is None:
            raise ConfigError(list(self.problems))
        return Complete(self.settings, self.feeds, self.rules, self.alerts)


@dataclass(frozen=True)
class Complete:
    """A configuration with every file loaded and no problem (``feeds`` is None only when
    :func:`load_all` was told not to read them)."""

    settings: Settings
    feeds: FeedsConfig | None
    rules: RuleSet
    alerts: AlertsConfig

    def sources(self) -> FeedsConfig:
        """The sources; ValueError if they were not loaded (a caller's mistake)."""
        if self.feeds is None:
            raise ValueError("load_all(..., feeds=False) loaded no sources")
        return self.feeds


def load_all(path: Path | None, *, feeds: bool = True) -> Loaded:
    """Read and check the whole configuration. Raises ConfigError only when the settings
    themselves cannot be loaded (nothing else can be found then); every other problem, in
    any of the files or between them (an alert rule for a topic the rules do not define),
    is collected in :attr:`Loaded.problems`. ``feeds=False``: the pipeline alone, which
    reads no sources, does not read feeds.yaml either."""
    settings = load_settings(path)
    problems: list[str] = []
    alerts = sources = rules = None
    try:
        alerts = load_alerts(settings)
    except ConfigError as exc:
        problems += exc.problems
    if feeds:
        try:
            sources = load_feeds(settings)
        except ConfigError as exc:
            problems += exc.problems
    try:
        rules = load_topics(settings)
    except ConfigError as exc:
        problems += exc.problems
    if alerts is not None and rules is not None:
        problems += unknown_alert_topics(alerts, rules.topics, settings.alerts)
    return Loaded(settings, sources, rules, alerts, tuple(problems))
