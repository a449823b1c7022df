"""What every command shares: the typer app, the common options, exit statuses, and loading
the configuration into a clean exit 2 (ops/loading.py does the loading)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from newsmon.config import Settings
from newsmon.configfile import ConfigError

# Re-exported: the commands take their exit statuses from here (defined in newsmon.exits).
from newsmon.exits import EXIT_CONFIG as EXIT_CONFIG
from newsmon.exits import EXIT_FAILED as EXIT_FAILED
from newsmon.exits import EXIT_SOURCES_FAILED as EXIT_SOURCES_FAILED

if TYPE_CHECKING:
    from newsmon.connectors.feeds import FeedsConfig
    from newsmon.connectors.results import PollReport
    from newsmon.ops.loading import Complete
    from newsmon.pipeline.alerts.config import AlertsConfig

app = typer.Typer(
    help="newsmon: monitor news sites and Telegram channels for topics, with alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

log = logging.getLogger("newsmon")


def command_group(name: str, help_text: str, **options: Any) -> typer.Typer:
    """A ``newsmon NAME ...`` group of sub-commands, added to the app (shown with its help
    when called bare, unless ``options`` say otherwise)."""
    group = typer.Typer(help=help_text, **({"no_args_is_help": True} | options))
    app.add_typer(group, name=name)
    return group

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Main settings file (default: $NEWSMON_CONFIG_DIR/newsmon.yaml)."
    ),
]
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(help="Serve Prometheus metrics at http://HOST:PORT/metrics while running."),
]
MetricsHostOpt = Annotated[
    str, typer.Option(help="Address the metrics endpoint binds to (0.0.0.0 in a container).")
]
MetricsFileOpt = Annotated[
    Path | None,
    typer.Option(help="Write Prometheus metrics to this file at the end of the run "
                 "(node-exporter textfile collector; counters carry on across runs)."),
]
SinceOpt = Annotated[str, typer.Option(help="How far back: 30m, 24h, 7d, ...")]
UntilOpt = Annotated[
    str | None, typer.Option(help="End of the window, ISO 8601 (default: now), in UTC "
                             "unless it says otherwise.")
]


class LogFormat(StrEnum):
    text = "text"
    json = "json"


#: What the command line asked for; None: the settings' log_format decides.
_log_choice: dict[str, Any] = {"format": None, "verbose": False}


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(help="Log lines as text or one JSON object per line (default: the "
                     "log_format setting, NEWSMON_LOG_FORMAT)."),
    ] = None,
) -> None:
    """Structured logging with secrets masked (newsmon/logs.py)."""
    from newsmon import logs

    fmt = log_format.value if log_format else None
    _log_choice.update(format=fmt, verbose=verbose)
    logs.configure("json" if fmt == "json" else "text", verbose=verbose)




def fail(message: str, code: int) -> typer.Exit:
    """Print ``message`` to standard error; the Exit to raise with ``code``."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def run_failed(exc: Exception) -> typer.Exit:
    return fail(f"run failed, offsets not committed (safe to re-run): {exc}", EXIT_FAILED)


def poll_status(report: PollReport) -> tuple[int, str]:
    """The exit status of a poll pass and the status line that says the same.

    Items that could not be published (Kafka down) fail the run: they are fetched again by
    the next one. A source that failed costs no item (it is polled again on its schedule), so
    the run is done, with a status of its own that a scheduler can tell from both.
    """
    from newsmon.connectors.results import FAILED

    unpublished = sum(1 for r in report.results if r.status == "publish-failed")
    if unpublished:
        return EXIT_FAILED, (f"status: FAILED (exit 1): the items of {unpublished} sources "
                             "were not published; the next run fetches them again")
    if report.ok:
        return 0, "status: OK"
    failed = sum(1 for r in report.results if r.status in FAILED)
    return EXIT_SOURCES_FAILED, (f"status: SOURCES FAILED (exit 3): {failed} of "
                                 f"{len(report.results)} sources failed or are disabled; every "
                                 "item fetched was handled (see `newsmon sources`)")


@contextmanager
def exclusive(settings: Settings, *jobs: str) -> Iterator[None]:
    """One run of each job at a time per state directory (newsmon/runlock.py); a run that
    finds one still going exits 75 without doing anything."""
    from newsmon.runlock import EXIT_LOCKED, RunLocked, run_lock

    with ExitStack() as stack:
        try:
            for job in jobs:
                stack.enter_context(run_lock(settings.state_dir, job))
        except RunLocked as exc:
            raise fail(str(exc), EXIT_LOCKED) from exc
        yield


def _apply_log_format(settings: Settings) -> None:
    from newsmon import logs

    if _log_choice["format"] is None and settings.log_format != logs.current_format():
        logs.configure(settings.log_format, verbose=_log_choice["verbose"])


def settings(path: Path | None) -> Settings:
    """The checked settings, or exit 2 with every problem."""
    from newsmon.ops import loading

    try:
        loaded = loading.load_settings(path)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    _apply_log_format(loaded)
    return loaded


def load_alerts(loaded: Settings) -> AlertsConfig:
    from newsmon.ops import loading

    try:
        return loading.load_alerts(loaded)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc


def feeds(loaded: Settings) -> FeedsConfig:
    from newsmon.ops import loading

    try:
        return loading.load_feeds(loaded)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc


def complete(path: Path | None, *, with_feeds: bool = True) -> Complete:
    """Every configuration file, loaded and checked together (ops.loading.load_all), or exit
    2 with every problem: a bad rule file is one clear line rather than a worker traceback
    from inside the pipeline."""
    from newsmon.ops import loading

    try:
        config = loading.load_all(path, feeds=with_feeds).require()
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    _apply_log_format(config.settings)
    return config


def window(since: str, until: str | None) -> tuple[datetime, datetime]:
    """The time window ``since`` before ``until`` (default now), in UTC; exit 2 if either
    cannot be read."""
    from datetime import UTC

    from newsmon.ops.report import parse_duration

    try:
        span = parse_duration(since)
        end = datetime.fromisoformat(until) if until else datetime.now(UTC)
    except ValueError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    end = end.replace(tzinfo=UTC) if end.tzinfo is None else end
    return end - span, end
