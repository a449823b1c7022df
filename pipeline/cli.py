"""The ``newsmon`` command: thin over the library, one function per command.

Exit status, what a scheduler sees (README, "Exit codes"): 0 everything done; 1 the run
failed (a service down: nothing or part of it committed, safe to re-run); 2 invalid config or
usage; 3 the run went through and every item fetched was handled, but some sources failed or
are disabled (``newsmon sources`` says which); 75 the same job is still running from an
earlier start (pipeline/runlock.py).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from newsmon.config import (
    ConfigError,
    Settings,
    load_checked_settings,
    load_model,
    shipped_config_dir,
)
from newsmon.pipeline.alerts.config import AlertsConfig

app = typer.Typer(
    help="newsmon: monitor news sites and Telegram channels for topics, with alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
pipeline_app = typer.Typer(help="Kafka -> Beam -> search server.", no_args_is_help=True)
search_app = typer.Typer(help="Search-server index templates and indices.", no_args_is_help=True)
config_app = typer.Typer(help="Validate configuration.", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
app.add_typer(search_app, name="search")
app.add_typer(config_app, name="config")
alerts_app = typer.Typer(help="Alert rules: dry runs, surges, deliveries.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")

log = logging.getLogger("newsmon")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Main settings file (default: $NEWSMON_CONFIG_DIR/newsmon.yaml)."
    ),
]


class LogFormat(StrEnum):
    text = "text"
    json = "json"


#: What the command line asked for; None: the settings' log_format decides.
_log_choice: dict[str, Any] = {"format": None, "verbose": False}


def _setup_logging(fmt: str | None = None, verbose: bool = False) -> None:
    """Structured logging with secrets masked (pipeline/logs.py)."""
    from newsmon import logs

    _log_choice.update(format=fmt, verbose=verbose)
    logs.configure("json" if fmt == "json" else "text", verbose=verbose)


#: The run failed before its end (a service down); what was not committed is done again by
#: the next run.
EXIT_FAILED = 1
EXIT_CONFIG = 2
#: The run went through, every item fetched was published and processed, but some sources
#: failed or are disabled: nothing to re-run, something to look at (`newsmon sources`).
EXIT_SOURCES_FAILED = 3


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _poll_status(report: Any) -> tuple[int, str]:
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


def _run_failed(exc: Exception) -> typer.Exit:
    return _fail(f"run failed, offsets not committed (safe to re-run): {exc}", EXIT_FAILED)


def _poll_summary(report: Any) -> str:
    """The poll report's totals and failed sources, without its own status line: the command
    prints one status line of its own, the one its exit status agrees with."""
    lines = report.summary().splitlines()
    return "\n".join(line for line in lines if not line.startswith("status:"))


@contextmanager
def _exclusive(settings: Settings, *jobs: str) -> Iterator[None]:
    """One run of each job at a time per state directory (pipeline/runlock.py); a run that
    finds one still going exits 75 without doing anything."""
    from newsmon.runlock import EXIT_LOCKED, RunLocked, run_lock

    with ExitStack() as stack:
        try:
            for job in jobs:
                stack.enter_context(run_lock(settings.state_dir, job))
        except RunLocked as exc:
            raise _fail(str(exc), EXIT_LOCKED) from exc
        yield


def _settings(path: Path | None) -> Settings:
    from newsmon import logs

    try:
        settings = load_checked_settings(path)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from exc
    logs.register_secrets([settings])
    if _log_choice["format"] is None and settings.log_format != logs.current_format():
        logs.configure(settings.log_format, verbose=_log_choice["verbose"])
    return settings


def _alerts(settings: Settings) -> AlertsConfig:
    from newsmon import logs

    try:
        alerts = load_model(AlertsConfig, settings.alerts)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from exc
    logs.register_secrets([alerts])  # the values of the channels' secret_env variables
    return alerts


def _sources(settings: Settings) -> Any:
    from newsmon.connectors.feeds import load_sources

    try:
        return load_sources(settings.feeds)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from exc


def _context(settings: Settings, *, kafka_dead_letters: bool = False) -> Any:
    from newsmon.pipeline.alerts.config import unknown_alert_topics
    from newsmon.pipeline.rules import load_rules

    # Validated here, once, so a bad rule file is one clear line and exit 2 rather than a
    # worker traceback from inside the pipeline.
    try:
        rules = load_rules(settings.topics)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from exc
    alerts = _alerts(settings)
    problems = unknown_alert_topics(alerts, rules.topics, settings.alerts)
    if problems:
        raise _fail("\n".join(problems), EXIT_CONFIG)
    from newsmon.pipeline.app import (
        RunContext,  # Beam, imported once the config is known to be valid
    )

    return RunContext(settings=settings, alerts=alerts, dead_letters_to_kafka=kafka_dead_letters)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(help="Log lines as text or one JSON object per line (default: the "
                     "log_format setting, NEWSMON_LOG_FORMAT)."),
    ] = None,
) -> None:
    _setup_logging(log_format.value if log_format else None, verbose=verbose)


# --- config ---------------------------------------------------------------------------


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate newsmon.yaml, feeds, topics and alert rules; one line per problem."""
    settings = _settings(config)
    from newsmon.pipeline.alerts.config import unknown_alert_topics

    problems: list[str] = []
    checks: list[tuple[str, Any]] = [("alerts", lambda: load_model(AlertsConfig, settings.alerts))]
    checks.append(("feeds", lambda: _load_feeds_plain(settings)))
    checks.append(("topics", lambda: _load_rules_plain(settings)))
    loaded: dict[str, Any] = {}
    for name, check in checks:
        try:
            loaded[name] = check()
        except ConfigError as exc:
            problems.extend(exc.problems)
    if "alerts" in loaded and "topics" in loaded:
        problems += unknown_alert_topics(loaded["alerts"], loaded["topics"].topics,
                                         settings.alerts)
    if problems:
        raise _fail("\n".join(problems), EXIT_CONFIG)
    redacted = settings.model_dump(mode="json")
    typer.echo(json.dumps(redacted, indent=2, default=str))
    typer.echo("config ok", err=True)


@config_app.command("docs")
def config_docs(
    out: Annotated[Path | None, typer.Option(help="Write here (docs/settings.md) instead of "
                                             "standard output.")] = None,
) -> None:
    """The table of every setting: YAML key, environment variable, type, default."""
    from newsmon.pipeline.settings_doc import render

    text = render()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(str(out), err=True)


@app.command()
def doctor(config: ConfigOpt = None) -> None:
    """Check config, state, sources, Kafka, the search server and the alert channels.

    One line per check; a problem's line says what to do. Exit status 0 when everything works
    (warnings allowed), 1 when a service or endpoint is not usable, 2 when the config is invalid.
    """
    from newsmon.pipeline import doctor as checks

    findings = checks.run_checks(config)
    for finding in findings:
        typer.echo(finding.line())
    status = checks.exit_status(findings)
    problems = sum(1 for f in findings if f.status == "fail")
    typer.echo("doctor: all checks passed" if status == 0 else
               f"doctor: {problems} problem(s) found", err=True)
    raise typer.Exit(status)


def _load_feeds_plain(settings: Settings) -> Any:
    from newsmon.connectors.feeds import load_sources

    return load_sources(settings.feeds)


def _load_rules_plain(settings: Settings) -> Any:
    from newsmon.pipeline.rules import load_rules

    return load_rules(settings.topics)


# --- search ---------------------------------------------------------------------------


@search_app.command("setup")
def search_setup(config: ConfigOpt = None) -> None:
    """Apply index templates and create the indices (idempotent)."""
    from newsmon.pipeline.io_search import (
        SearchServerStore,
        StoreSetupError,
        StoreUnavailable,
        open_store,
    )

    settings = _settings(config)
    store = open_store(settings.search, settings.state_dir)
    try:
        if isinstance(store, SearchServerStore):
            store.setup(full=True)  # re-detect analyzers, re-apply everything
        else:
            store.setup()
    except StoreUnavailable as exc:
        raise _fail(f"search server unavailable: {exc}", EXIT_FAILED) from exc
    except StoreSetupError as exc:
        raise _fail(f"search setup: {exc}", EXIT_FAILED) from exc
    languages = ", ".join(getattr(store, "languages", ())) or "none (standard analyzer only)"
    typer.echo(f"{settings.search.backend}: templates and indices ready "
               f"(prefix {settings.search.index_prefix}; language subfields: {languages})")


@search_app.command("export")
def search_export(
    out: Annotated[Path, typer.Option(help="Directory for the template JSON files.")] = Path(
        "deploy/search"
    ),
    prefix: str = "newsmon",
) -> None:
    """Write the index templates as JSON, for operators who apply them with their own tools.

    ``<kind>.template.json`` uses the standard analyzer (every server has it);
    ``articles.languages.template.json`` adds the per-language subfields for the analyzers of
    the analysis-common module (``newsmon search setup`` asks the server which it has).
    """
    from newsmon.languages import COMMON_LANGUAGES
    from newsmon.pipeline.mappings import MAPPINGS, index_template

    out.mkdir(parents=True, exist_ok=True)
    files = {f"{kind}.template.json": index_template(prefix, kind) for kind in MAPPINGS}
    files["articles.languages.template.json"] = index_template(
        prefix, "articles", COMMON_LANGUAGES)
    for name, body in files.items():
        path = out / name
        path.write_text(json.dumps(body, indent=2) + "\n")
        typer.echo(str(path))


@search_app.command("kibana")
def search_kibana(
    out: Annotated[Path, typer.Option(help="The saved objects file (NDJSON).")] = Path(
        "deploy/kibana/newsmon.ndjson"
    ),
    prefix: str = "newsmon",
) -> None:
    """Write the Kibana saved objects (data views, dashboard): import them with Kibana's
    saved objects API (see deploy/kibana/README.md)."""
    from newsmon.pipeline.dashboards import ndjson

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(ndjson(prefix), encoding="utf-8")
    typer.echo(str(out))


# --- connectors -----------------------------------------------------------------------


def _poller(
    settings: Settings, publisher: Any, *, archive: Path | None = None, progress: bool = False
) -> Any:
    from newsmon.connectors.runner import Poller

    sources = _sources(settings)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return Poller(sources, settings.state_dir / "connectors.sqlite", publisher,
                  archive_path=archive, progress=progress)


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


@app.command()
def poll(
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Poll every due source once and exit.")] = (
        False
    ),
    force: Annotated[bool, typer.Option(help="With --once: ignore intervals.")] = False,
    archive: Annotated[
        Path | None, typer.Option(help="Also append every published item to this JSONL file.")
    ] = None,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = "127.0.0.1",
    metrics_file: MetricsFileOpt = None,
) -> None:
    """Poll feeds and Telegram channels and publish new items to Kafka."""
    from newsmon import metrics
    from newsmon.connectors.publisher import KafkaPublisher

    settings = _settings(config)
    publisher = KafkaPublisher(settings.kafka)
    with _exclusive(settings, "poll"), metrics.exported(
            "poll-once" if once else "poll", port=metrics_port, host=metrics_host,
            textfile=metrics_file):
        try:
            poller = _poller(settings, publisher, archive=archive, progress=once)
            if once:
                report = poller.poll_once(force=force)
                typer.echo(_poll_summary(report))
                _publish_health(settings)
                code, status = _poll_status(report)
                typer.echo(status)
                raise typer.Exit(code)
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            poller.run_forever(stop)
        finally:
            publisher.close()


@app.command()
def sources(
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    publish: Annotated[
        bool, typer.Option("--publish", help="Also write it to the search store's "
                           "source-health index (for dashboards; schedule it next to a "
                           "continuously running poller).")
    ] = False,
) -> None:
    """Show every configured source with its health."""
    from newsmon.connectors import cli_support
    from newsmon.connectors.health import source_health

    settings = _settings(config)
    health = source_health(_sources(settings), settings.state_dir / "connectors.sqlite")
    typer.echo(cli_support.health_json(health) if as_json else cli_support.health_table(health))
    if publish:
        _publish_health(settings)


def _publish_health(settings: Settings) -> None:
    """Copy the pollers' source health into the search store (never fails the caller)."""
    from newsmon.connectors.health import source_health
    from newsmon.pipeline import health
    from newsmon.pipeline.io_search import open_store

    store = open_store(settings.search, settings.state_dir)
    try:
        n = health.publish(store, source_health(_sources(settings),
                                                settings.state_dir / "connectors.sqlite"))
        _publish_poll_dead_letters(settings, store)
    finally:
        store.close()
    log.debug("source health of %d sources written to the %s store", n,
             settings.search.backend)


def _publish_poll_dead_letters(settings: Settings, store: Any) -> None:
    """Copy the pollers' dead letters (kept in their state store) to the dead-letter index,
    where `newsmon deadletters` and the dashboards show them beside the pipeline's."""
    from newsmon.connectors.state import StateStore
    from newsmon.pipeline.io_search import StoreUnavailable

    path = settings.state_dir / "connectors.sqlite"
    if not path.exists():
        return
    with StateStore(path) as state:
        letters = state.dead_letters(unpublished_only=True)
        if not letters:
            return
        try:
            failures = store.bulk_write("dead-letters", [
                (dl.dl_id, dl.model_dump(mode="json") | {"replayed": False}) for dl in letters])
        except StoreUnavailable as exc:  # kept in the state store: the next pass copies them
            log.warning("%d poll dead letters not copied to the search store yet: %s",
                        len(letters), exc)
            return
        failed = {f.doc_id for f in failures}
        state.mark_dead_letters_published(dl.dl_id for dl in letters if dl.dl_id not in failed)
    for failure in failures:  # kept unpublished: the next pass tries again
        log.warning("dead letter %s not written: %s", failure.doc_id, failure.error)


# --- pipeline -------------------------------------------------------------------------


class Mode(StrEnum):
    batch = "batch"
    stream = "stream"
    backfill = "backfill"


@pipeline_app.command("run")
def pipeline_run(
    config: ConfigOpt = None,
    mode: Annotated[
        Mode,
        typer.Option(
            help="batch: process what this consumer group has not processed in Kafka, commit "
            "the offsets after the search server acknowledged the writes, exit (for cron and "
            "CronJobs). stream: run continuously. backfill: reprocess archived raw items "
            "(JSON Lines, see `poll --archive`) with the current rules.",
        ),
    ] = Mode.batch,
    source: Annotated[
        Path | None, typer.Option("--from", help="backfill: the JSONL archive to read.")
    ] = None,
    runner: Annotated[
        str,
        typer.Option(
            help="Beam runner: FnApiRunner (local, default) or FlinkRunner, SparkRunner, "
            "DataflowRunner; pass their options after `--`."
        ),
    ] = "FnApiRunner",
    beam_args: Annotated[
        list[str] | None, typer.Argument(help="Extra Beam pipeline options, after `--`.")
    ] = None,
    metrics_port: MetricsPortOpt = None,
    metrics_host: MetricsHostOpt = "127.0.0.1",
    metrics_file: MetricsFileOpt = None,
) -> None:
    """Run the Beam pipeline: Kafka (or an archive) -> documents, alerts, dead letters."""
    from newsmon import metrics
    from newsmon.pipeline.io_search import StoreSetupError, StoreUnavailable

    settings = _settings(config)
    ctx = _context(settings, kafka_dead_letters=mode is not Mode.backfill)
    # Beam, imported once the config is known to be valid (its import logs noise).
    from newsmon.kafka import KafkaUnavailable
    from newsmon.pipeline.jobs import run_backfill, run_kafka_batch, run_kafka_stream

    extra = beam_args or ()
    # Batch and stream runs own the consumer group's offsets: one at a time. A backfill
    # reads a file and commits nothing, so it may run beside them.
    jobs = () if mode is Mode.backfill else ("pipeline",)
    with _exclusive(settings, *jobs), metrics.exported(
            f"pipeline-{mode.value}", port=metrics_port, host=metrics_host,
            textfile=metrics_file):
        try:
            if mode is Mode.backfill:
                if source is None:
                    raise _fail("--mode backfill needs --from PATH (a JSONL archive)",
                                EXIT_CONFIG)
                n = run_backfill(source, ctx, runner=runner, extra_options=extra)
                typer.echo(f"backfilled {n} records from {source}")
            elif mode is Mode.stream:
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                signal.signal(signal.SIGINT, lambda *_: stop.set())
                n = run_kafka_stream(ctx, stop, runner=runner, extra_options=extra)
                typer.echo(f"stream stopped after {n} records")
            else:
                summary = run_kafka_batch(ctx, runner=runner, extra_options=extra)
                typer.echo(f"processed {summary.records} records; offsets committed")
        except (KafkaUnavailable, StoreUnavailable, StoreSetupError) as exc:
            raise _run_failed(exc) from exc


@app.command()
def run(
    config: ConfigOpt = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Use the shipped demo feeds and the embedded store.")
    ] = False,
) -> None:
    """Poll once and run the pipeline in one process.

    On the embedded default (search backend `embedded`, as in --demo) no Kafka and no search
    server are needed: items go straight to the pipeline, documents to a local SQLite store,
    alerts to the console. Otherwise items go through Kafka to the search server.
    """
    from newsmon.kafka import KafkaUnavailable
    from newsmon.pipeline.io_search import StoreSetupError, StoreUnavailable

    settings = _settings(shipped_config_dir() / "demo" / "newsmon.yaml" if demo else config)
    with _exclusive(settings, "poll", "pipeline"):
        try:
            report = _run_once(settings, demo=demo)
        except (KafkaUnavailable, StoreUnavailable, StoreSetupError) as exc:
            raise _run_failed(exc) from exc
    code, status = _poll_status(report)
    typer.echo(status)
    raise typer.Exit(code)


def _run_once(settings: Settings, *, demo: bool) -> Any:
    """Poll, then process what was polled; returns the poll report (its sources' status is
    the run's). A service that is down raises (KafkaUnavailable, StoreUnavailable)."""
    from newsmon.connectors.publisher import KafkaPublisher
    from newsmon.pipeline.embedded import SpoolPublisher
    from newsmon.pipeline.io_search import open_store
    from newsmon.pipeline.jobs import run_backfill, run_kafka_batch

    ctx = _context(settings)
    if settings.search.backend == "embedded":
        spool = SpoolPublisher(settings.state_dir)
        report = _poller(settings, spool).poll_once(force=demo)
        typer.echo(_poll_summary(report))
        _publish_health(settings)
        n = 0
        while (claimed := spool.claim()) is not None:
            n += run_backfill(claimed, ctx, progress=False)
            spool.done(claimed)
        store = open_store(settings.search, settings.state_dir)
        typer.echo(
            f"processed {n} new items; store {settings.state_dir / 'documents.sqlite'} holds "
            f"{store.count('articles')} articles, {store.count('alerts')} alerts, "
            f"{store.count('dead-letters')} dead letters"
        )
        return report
    kafka_publisher = KafkaPublisher(settings.kafka)
    try:
        report = _poller(settings, kafka_publisher).poll_once()
    finally:
        kafka_publisher.close()
    typer.echo(_poll_summary(report))
    _publish_health(settings)
    summary = run_kafka_batch(_context(settings, kafka_dead_letters=True))
    typer.echo(f"processed {summary.records} records; offsets committed")
    return report


# --- dead letters ----------------------------------------------------------------------


@app.command()
def deadletters(
    config: ConfigOpt = None,
    stage: Annotated[str | None, typer.Option(help="Only this stage (decode, normalize, ...).")] = (
        None
    ),
    replay: Annotated[
        bool, typer.Option("--replay", help="Run them through the pipeline again (after a fix).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the items no stage could handle, with stage, source and error; replay them."""
    from newsmon.pipeline import deadletters as dl
    from newsmon.pipeline.io_search import open_store
    from newsmon.pipeline.jobs import run_records

    settings = _settings(config)
    store = open_store(settings.search, settings.state_dir)
    letters = dl.pending(store, stage)
    if not replay:
        for letter in letters:
            if as_json:
                typer.echo(letter.model_dump_json())
            else:
                typer.echo(f"{letter.created_at:%Y-%m-%d %H:%M} {letter.stage:<9} "
                           f"{letter.source_id:<24} {letter.error[:120]}")
        typer.echo(f"{len(letters)} dead letters pending", err=True)
        return
    # A poll-stage letter is a fetch that failed, not a record to run again: the poller
    # fetches the source again on its own schedule (now: `newsmon poll --once --force`), so
    # replaying one only marks it handled; if it fails again it is parked again.
    polled = [letter for letter in letters if letter.stage == "poll"]
    letters = [letter for letter in letters if letter.stage != "poll"]
    if polled:
        dl.mark(store, polled, replayed=True)
        typer.echo(f"{len(polled)} poll dead letters marked handled (the poller fetches their "
                   "sources again; `newsmon poll --once --force` does it now)", err=True)
    dl.mark(store, letters, replayed=True)
    try:
        run_records([dl.as_record(letter) for letter in letters], _context(settings))
    except BaseException:
        dl.mark(store, letters, replayed=False)
        raise
    store.refresh("dead-letters")
    typer.echo(f"replayed {len(letters)}; {len(dl.pending(store, stage))} still pending")


# --- detection ------------------------------------------------------------------------


@app.command()
def classify(
    file: Annotated[str, typer.Argument(help="Text file to classify, or - for stdin.")],
    config: ConfigOpt = None,
    lang: Annotated[str | None, typer.Option(help="Language hint (ISO 639-1).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Classify one text: topics with score and evidence, and entities."""
    from newsmon.languages import detect_language
    from newsmon.pipeline.rules import Classifier

    settings = _settings(config)
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        classifier = Classifier.from_path(settings.topics)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from exc
    result = classifier.classify(text, lang or detect_language(text))
    if as_json:
        payload = {
            "topics": [t.model_dump(mode="json") for t in result.topics],
            "entities": [e.model_dump(mode="json") for e in result.entities],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    if not result.topics:
        typer.echo("no topic")
    for t in result.topics:
        typer.echo(f"{t.topic}  score {t.score:.2f}  groups {', '.join(t.groups)}")
        for ev in t.evidence:
            typer.echo(f"   [{ev.start}:{ev.end}] {ev.group}: {ev.snippet}")
    if result.entities:
        typer.echo("entities: " + ", ".join(f"{e.name} ({e.kind})" for e in result.entities))


@app.command(name="eval")
def eval_command(
    file: Annotated[Path, typer.Argument(help="JSON Lines with text, lang, labels.")],
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Precision, recall and F1 per topic and per language, with the ids it got wrong, the
    file's languages that the rules do not cover, and the review flags raised."""
    from newsmon.pipeline.evaluation import evaluate, read_records
    from newsmon.pipeline.rules import Classifier

    settings = _settings(config)
    try:
        classifier = Classifier.from_path(settings.topics)
    except ConfigError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from exc
    from tqdm import tqdm

    # A bar on a terminal only (disable=None): piped or --json output stays clean.
    records = tqdm(read_records(file), desc="eval", unit="text", disable=None, leave=False)
    report = evaluate(classifier, records, rule_languages=classifier.rules.languages)
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(report.format_text())


# --- alerts -----------------------------------------------------------------------------


def _window(since: str, until: str | None) -> tuple[Any, Any]:
    from datetime import UTC, datetime

    from newsmon.pipeline.report import parse_duration

    try:
        span = parse_duration(since)
        end = datetime.fromisoformat(until) if until else datetime.now(UTC)
    except ValueError as exc:
        raise _fail(str(exc), EXIT_CONFIG) from exc
    end = end.replace(tzinfo=UTC) if end.tzinfo is None else end
    return end - span, end


SinceOpt = Annotated[str, typer.Option(help="How far back: 30m, 24h, 7d, ...")]
UntilOpt = Annotated[
    str | None, typer.Option(help="End of the window, ISO 8601 (default: now), in UTC "
                             "unless it says otherwise.")
]


@alerts_app.command("test")
def alerts_test(
    rule: Annotated[str, typer.Option("--rule", help="The rule's name in alerts.yaml.")],
    since: SinceOpt = "24h",
    until: UntilOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dry-run one rule on what is indexed: print what would alert; nothing is sent or written."""
    from newsmon.pipeline import alerting, surge
    from newsmon.pipeline.alerts.config import SurgeRule
    from newsmon.pipeline.io_search import open_store

    settings = _settings(config)
    alerts = _alerts(settings)
    chosen = alerts.rule(rule)
    if chosen is None:
        names = ", ".join(r.name for r in (*alerts.rules, *alerts.surges)) or "none"
        raise _fail(f"no rule {rule!r} in {settings.alerts} (rules: {names})", EXIT_CONFIG)
    start, end = _window(since, until)
    store = open_store(settings.search, settings.state_dir)
    if isinstance(chosen, SurgeRule):
        findings = surge.timeline(store, chosen, start, end)
        for f in findings:
            s = f.stats
            if as_json:
                typer.echo(json.dumps({"interval_start": f.interval_start.isoformat(),
                                       "count": s.count, "mean": round(s.mean, 3),
                                       "std": round(s.std, 3),
                                       "expected_max": round(s.expected_max, 3),
                                       "surge": s.surge}))
            elif s.count or s.surge:
                mark = "SURGE" if s.surge else "     "
                typer.echo(f"{f.interval_start:%Y-%m-%d %H:%M}  {mark}  {s.count:>5} articles"
                           f"  (baseline {s.mean:.1f} ± {s.std:.1f}, surge above "
                           f"{s.expected_max:.1f})")
        n = sum(1 for f in findings if f.stats.surge)
        typer.echo(f"surge rule {chosen.name} (topic {chosen.topic}): {n} surge intervals of "
                   f"{len(findings)} from {start:%Y-%m-%d %H:%M} UTC; dry run, nothing sent",
                   err=True)
        return
    docs = store.scan("articles", since=start, until=end, terms={"topic_names": [chosen.topic]})
    would = alerting.dry_run(chosen, alerting.articles_from_documents(docs))
    for alert in would:
        if as_json:
            typer.echo(alert.model_dump_json())
            continue
        typer.echo(f"{alert.created_at:%Y-%m-%d %H:%M}  score {alert.score:.2f}  "
                   f"{len(alert.doc_ids)} copies · {len(alert.source_ids)} sources · "
                   f"{', '.join(alert.languages)}  {alert.title}")
        typer.echo(f"    {alert.url}")
        for snippet in list(dict.fromkeys(ev.snippet for ev in alert.evidence))[:2]:
            typer.echo(f"    … {snippet} …")
    typer.echo(f"rule {chosen.name} (topic {chosen.topic}, threshold {chosen.threshold}): "
               f"{len(would)} alerts from {start:%Y-%m-%d %H:%M} UTC; dry run, nothing sent",
               err=True)


@alerts_app.command("surge")
def alerts_surge(
    config: ConfigOpt = None,
    at: UntilOpt = None,
    deliver: Annotated[bool, typer.Option(help="Deliver new surges to their channels.")] = True,
) -> None:
    """Evaluate the surge rules now (for a schedule; every pipeline run does it too)."""
    from newsmon.pipeline.delivery import Deliverer
    from newsmon.pipeline.io_search import StoreUnavailable, open_store
    from newsmon.pipeline.surge import evaluate_surges

    settings = _settings(config)
    alerts = _alerts(settings)
    _, now = _window("1s", at)
    store = open_store(settings.search, settings.state_dir)
    try:
        store.refresh("articles")
        found = evaluate_surges(store, alerts, now)
        deliverer = Deliverer(store, alerts)
        for finding in found:
            s = finding.stats
            typer.echo(f"{finding.rule.name}: {s.count} articles from "
                       f"{finding.interval_start:%Y-%m-%d %H:%M} UTC (surge above "
                       f"{s.expected_max:.1f}; baseline {s.mean:.1f} ± {s.std:.1f})")
            if deliver:
                for attempt in deliverer.deliver(finding.alert_id, now):
                    typer.echo(f"    {attempt.channel}: {attempt.status} {attempt.error}".rstrip())
    except StoreUnavailable as exc:
        raise _fail(f"search server unavailable: {exc}", EXIT_FAILED) from exc
    typer.echo(f"{len(found)} surges among {len(alerts.surges)} surge rules", err=True)


@alerts_app.command("deliver")
def alerts_deliver(config: ConfigOpt = None) -> None:
    """Retry every delivery still owed (a channel that was down); exit 1 if some still fail."""
    from newsmon.pipeline.delivery import Deliverer
    from newsmon.pipeline.io_search import StoreUnavailable, open_store

    settings = _settings(config)
    store = open_store(settings.search, settings.state_dir)
    try:
        attempts = Deliverer(store, _alerts(settings)).deliver_pending()
    except StoreUnavailable as exc:
        raise _fail(f"search server unavailable: {exc}", EXIT_FAILED) from exc
    for a in attempts:
        typer.echo(f"{a.channel}: {a.status} {a.error}".rstrip())
    typer.echo(f"{len(attempts)} delivery attempts", err=True)
    if any(a.status == "failed" for a in attempts):
        raise typer.Exit(EXIT_FAILED)


@alerts_app.command("list")
def alerts_list(
    config: ConfigOpt = None,
    since: SinceOpt = "24h",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Alerts raised in the window, newest first, with their delivery state."""
    from newsmon.pipeline.io_search import open_store

    settings = _settings(config)
    start, end = _window(since, None)
    store = open_store(settings.search, settings.state_dir)
    docs = sorted(store.scan("alerts", since=start, until=end),
                  key=lambda d: str(d.get("created_at")), reverse=True)
    for doc in docs:
        if as_json:
            typer.echo(json.dumps(doc, ensure_ascii=False))
            continue
        state = " ".join(f"{key}={','.join(doc[key])}" for key in
                         ("notified", "pending", "failed", "throttled") if doc.get(key))
        typer.echo(f"{str(doc.get('created_at'))[:16]}  {doc.get('kind', 'story'):<5}  "
                   f"{doc.get('rule')}  {doc.get('title', '')[:90]}  [{state}]")
    typer.echo(f"{len(docs)} alerts", err=True)


# --- report ---------------------------------------------------------------------------


@app.command()
def report(
    config: ConfigOpt = None,
    since: SinceOpt = "7d",
    until: UntilOpt = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    title: Annotated[str, typer.Option(help="The page's title.")] = "newsmon report",
) -> None:
    """Write one self-contained HTML page: volume per topic, language and source, top
    stories, latest alerts with evidence, source health, dead letters (no Kibana needed)."""
    from newsmon.pipeline.io_search import StoreUnavailable, open_store
    from newsmon.pipeline.report import build

    settings = _settings(config)
    start, end = _window(since, until)
    store = open_store(settings.search, settings.state_dir)
    try:
        page, summary = build(store, start, end, title=title)
    except StoreUnavailable as exc:
        raise _fail(f"search server unavailable: {exc}", EXIT_FAILED) from exc
    out.write_text(page, encoding="utf-8")
    totals = ", ".join(f"{v} {k}" for k, v in summary.totals.items())
    typer.echo(f"{out}: {totals}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
