"""Every metric newsmon exposes, in one place, and the two ways they leave the process.

Continuous runs (``newsmon poll``, ``newsmon pipeline run --mode stream``) serve them over HTTP
for Prometheus to scrape (``--metrics-port``, bound to 127.0.0.1 unless told otherwise).
Scheduled runs (``poll --once``, ``pipeline run --mode batch``) write them to a file at the end
(``--metrics-file``), in the format of node-exporter's textfile collector: the file is replaced
atomically, and counters carry on from the previous file, so they only ever go up across runs
as Prometheus expects of a counter. Histograms are left out of the file (their buckets cannot
be carried on); the ``newsmon_last_run_*`` gauges give each run's duration and outcome.

Where the numbers come from:

* connectors count in the process (``newsmon.connectors.metrics.observe_poll_report`` after
  every pass);
* pipeline stages count with Beam metrics (namespace ``newsmon``), because on a distributed
  runner the stages run in other processes; the driver reads them from the finished run's
  ``PipelineResult`` (``newsmon.pipeline.metrics.observe_pipeline_result``) and adds them here
  (:func:`apply_beam_counter`). The names of those Beam counters are defined here too
  (``stage_counter``, ``delivery_counter``);
* Kafka lag (end offset minus the group's committed offset, per partition) from the offset
  snapshot each batch or stream round takes before it reads (``newsmon.pipeline.metrics``).

This module imports neither half: the observers live beside what they observe.

Every metric has at least one label, so a file written by ``poll`` and one written by the
pipeline never hold the same series (node-exporter rejects duplicates across files).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.process_collector import ProcessCollector

from newsmon.models import FedBy, Stage

log = logging.getLogger(__name__)

#: Beam metrics namespace of the pipeline's counters.
NAMESPACE = "newsmon"

# ``*_created`` series double the size of the output and mean nothing for a textfile.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated

#: newsmon's own metrics (no process metrics: those mean nothing in a file after the exit).
REGISTRY = CollectorRegistry(auto_describe=True)

#: Counters by family name, for carrying them on from a textfile (``_name`` is the family name
#: without ``_total``, as the text parser reports it; prometheus_client has no public getter).
#: Filled by :func:`_counter`, so a new counter cannot be left out of the carry-over.
_COUNTERS: dict[str, Counter] = {}


def _counter(name: str, doc: str, labels: list[str]) -> Counter:
    counter = Counter(name, doc, labels, registry=REGISTRY)
    _COUNTERS[counter._name] = counter
    return counter


def _gauge(name: str, doc: str, labels: list[str]) -> Gauge:
    return Gauge(name, doc, labels, registry=REGISTRY)


def _histogram(name: str, doc: str, labels: list[str]) -> Histogram:
    return Histogram(name, doc, labels, registry=REGISTRY)


# --- connectors ----------------------------------------------------------------------------

POLLS = _counter("newsmon_connector_polls", "Polls by source type and outcome", ["type", "status"])
ITEMS = _counter("newsmon_connector_items", "Items published by source type (new or updated)",
                 ["type", "kind"])
PROBLEMS = _counter("newsmon_connector_problems", "Broken input met while polling, by kind",
                    ["type", "kind"])
POLL_DEAD_LETTERS = _counter(
    "newsmon_connector_dead_letters",
    "Failures parked as dead letters by the pollers (new ones only)",
    ["type"],
)
WEBSUB_PUSHES = _counter(
    "newsmon_websub_pushes",
    "WebSub pushes received, by outcome (published, bad-signature, unknown, failed)",
    ["outcome"],
)
FETCH_SECONDS = _histogram(
    "newsmon_connector_poll_seconds",
    "Time to fetch, parse and enrich one source",
    ["type"],
)
SOURCE_POLLS = _counter(
    "newsmon_source_polls",
    "Polls per source and outcome (ok, not-modified, throttled, error, publish-failed, disabled)",
    ["source", "status"],
)
SOURCE_ITEMS = _counter(
    "newsmon_source_items_published",
    "Items published to Kafka per source (new or updated)",
    ["source", "kind"],
)
SOURCE_PROBLEMS = _counter(
    "newsmon_source_problems",
    "Broken entries met per source (counted, logged, skipped)",
    ["source"],
)
POLL_PASS_SECONDS = _histogram(
    "newsmon_poll_pass_seconds",
    "Duration of one pass over the due sources",
    ["mode"],
)

# --- pipeline --------------------------------------------------------------------------------

PIPELINE_ITEMS = _counter(
    "newsmon_pipeline_items",
    "Items per pipeline stage: in (entered), out (passed on), dead_letter (parked)",
    ["stage", "outcome"],
)
PIPELINE_RECORDS = _counter(
    "newsmon_pipeline_records_read",
    "Raw records a pipeline run read (Kafka, archive, replay)",
    ["input"],
)
PIPELINE_RUNS = _counter(
    "newsmon_pipeline_runs",
    "Pipeline runs (stream: rounds) by input",
    ["input"],
)
PIPELINE_SECONDS = _histogram(
    "newsmon_pipeline_run_seconds",
    "Duration of one pipeline run (stream: one round)",
    ["input"],
)
DOCUMENTS = _counter(
    "newsmon_documents",
    "Article documents written: originals, or exact copies of another's text",
    ["result"],
)
TOPIC_MATCHES = _counter("newsmon_topic_matches", "Articles matching each topic", ["topic"])
ALERTS = _counter("newsmon_alerts", "Alerts created, or updated by a later copy", ["event"])
SURGES = _counter("newsmon_surges", "Surge alerts raised (a topic above its baseline)", ["event"])
DELIVERIES = _counter(
    "newsmon_alert_deliveries",
    "Alert deliveries per channel and status",
    ["channel", "status"],
)

# --- time-to-alert (issue 16, point 5) ------------------------------------------------------

#: The lags of an alert's first copy: publication -> first seen by a connector -> indexed ->
#: a channel's receiver acknowledged it, and the whole way.
Lag = Literal["publish_to_first_seen", "first_seen_to_indexed", "indexed_to_notified",
              "publish_to_notified"]
LAGS: tuple[Lag, ...] = get_args(Lag)
#: Upper bounds (seconds) of the lag histogram's buckets, as Beam counter name parts: from a
#: pushed item's seconds to a slow poll's hour. "sum_ms" names the counter of the sum.
LagBucket = Literal["0.5", "1", "2", "5", "10", "20", "30", "60", "120", "300", "600",
                    "1200", "1800", "3600", "7200", "21600", "86400", "+Inf", "sum_ms"]
LAG_BOUNDS: tuple[float, ...] = tuple(float(b) for b in get_args(LagBucket)[:-1])
#: The source-kind label of an unlabelled source.
UNLABELLED = "unlabelled"


class _LagHistogram:
    """The ``newsmon_alert_lag_seconds`` histogram, built from bucket counts.

    The notify stage runs in Beam workers, which count each observation in its bucket with a
    Beam counter (:func:`lag_counter`); the driver adds those counts here
    (:func:`apply_beam_counter`). prometheus_client's ``Histogram`` only takes single
    observations, so this collector keeps the per-bucket counts and the sum itself and exports
    them in the histogram's exposition form (cumulative buckets, ``_sum``, ``_count``).
    """

    name = "newsmon_alert_lag_seconds"
    labels = ("lag", "source_kind", "fed_by")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: (lag, source_kind, fed_by) -> [count per bucket, +Inf last], sum in seconds.
        self._series: dict[tuple[str, str, str], tuple[list[int], list[float]]] = {}

    def _of(self, key: tuple[str, str, str]) -> tuple[list[int], list[float]]:
        return self._series.setdefault(key, ([0] * (len(LAG_BOUNDS) + 1), [0.0]))

    def add(self, key: tuple[str, str, str], bucket: str, value: int) -> None:
        """Add ``value`` observations to ``bucket`` (a ``LagBucket``), or milliseconds to the
        sum (``sum_ms``)."""
        with self._lock:
            counts, total = self._of(key)
            if bucket == "sum_ms":
                total[0] += value / 1000
            elif bucket == "+Inf":
                counts[-1] += value
            else:
                counts[LAG_BOUNDS.index(float(bucket))] += value

    def observe(self, key: tuple[str, str, str], seconds: float) -> None:
        """One lag observed in this process (and what :func:`lag_observation` counts)."""
        for bucket, value in lag_observation(seconds):
            self.add(key, bucket, value)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(
            self.name, "Lags of alerts from publication to notification, by part "
            "(first copy of the story, each channel's first delivery)", labels=self.labels)
        with self._lock:
            series = {k: (list(c), t[0]) for k, (c, t) in self._series.items()}
        for key, (counts, total) in sorted(series.items()):
            running = 0
            buckets = []
            for bound, n in zip((*(str(b) for b in LAG_BOUNDS), "+Inf"), counts, strict=True):
                running += n
                buckets.append((bound, running))
            family.add_metric(list(key), buckets, total)
        yield family


ALERT_LAG = _LagHistogram()
REGISTRY.register(ALERT_LAG)


def lag_bucket(seconds: float) -> LagBucket:
    """The bucket a lag of ``seconds`` falls in (a negative lag, a source's clock ahead of
    ours, in the first)."""
    for bound, name in zip(LAG_BOUNDS, get_args(LagBucket), strict=False):
        if seconds <= bound:
            return name  # type: ignore[no-any-return]
    return "+Inf"


def lag_observation(seconds: float) -> list[tuple[LagBucket, int]]:
    """The Beam counter increments one observed lag makes: its bucket by one, the sum by its
    milliseconds (counters are integers; a negative lag adds nothing to the sum)."""
    return [(lag_bucket(seconds), 1), ("sum_ms", max(0, round(seconds * 1000)))]


KAFKA_LAG = _gauge(
    "newsmon_kafka_lag",
    "Records the consumer group has not processed: end offset minus committed offset, at the start "
    "of the last run or stream round",
    ["topic", "partition", "group"],
)

# --- runs (the textfile's main point) ------------------------------------------------------

LAST_RUN_TIMESTAMP = _gauge(
    "newsmon_last_run_timestamp_seconds",
    "When the last run of this command ended (Unix time)",
    ["command"],
)
LAST_RUN_SECONDS = _gauge(
    "newsmon_last_run_duration_seconds",
    "How long the last run of this command took",
    ["command"],
)
LAST_RUN_SUCCESS = _gauge(
    "newsmon_last_run_success",
    "1 if the last run of this command succeeded, else 0",
    ["command"],
)
LAST_SUCCESS_TIMESTAMP = _gauge(
    "newsmon_last_success_timestamp_seconds",
    "When this command last succeeded (Unix time)",
    ["command"],
)


# --- Beam counter names (the pipeline increments them, observe_pipeline_result reads them) --
# The pipeline names a Beam counter only through these; apply_beam_counter exports each of
# them (tests/pipeline/test_metrics_names.py walks the pipeline's counters and checks that).

DOCUMENTS_WRITTEN = "documents_written"
EXACT_COPIES = "exact_copies"
ALERTS_CREATED = "alerts_created"
ALERTS_UPDATED = "alerts_updated"
SURGES_RAISED = "surges"


def stage_counter(stage: Stage, outcome: Literal["in", "out"]) -> str:
    """Name of the Beam counter of ``stage``'s items ``in`` or ``out``."""
    return f"stage.{stage}.{outcome}"


def delivery_counter(channel: str, status: str) -> str:
    """Deliveries to ``channel`` that ended ``ok``, ``failed``, ``throttled`` or ``expired``."""
    return f"delivery.{channel}.{status}"


def lag_counter(lag: Lag, fed_by: FedBy, source_kind: str, bucket: LagBucket) -> str:
    """Name of the Beam counter of ``lag``'s observations in ``bucket`` (or their sum in
    milliseconds) for alerts of this source kind and path (:data:`ALERT_LAG`)."""
    return f"lag.{lag}.{fed_by}.{source_kind}.{bucket}"


def dead_letter_counter(stage: Stage) -> str:
    return f"dead_letters_{stage}"


def topic_counter(topic: str) -> str:
    return f"topic_{topic}"


def apply_beam_counter(name: str, value: int) -> bool:
    """Add a Beam counter's value (a name built above) to its Prometheus metric; False (and
    a warning) for a name that is not one of them, which would otherwise vanish silently."""
    if value <= 0:
        return True
    if name.startswith("stage."):
        _, stage, outcome = name.split(".", 2)
        PIPELINE_ITEMS.labels(stage, outcome).inc(value)
    elif name.startswith("delivery."):
        channel, _, status = name[len("delivery."):].rpartition(".")
        DELIVERIES.labels(channel, status).inc(value)
    elif name.startswith("lag.") and name.count(".") >= 4:
        # The bucket may hold a dot ("0.5"): the fields before it have none.
        _, lag, fed_by, kind, bucket = name.split(".", 4)
        if lag not in LAGS or bucket not in get_args(LagBucket):
            log.warning("Beam counter %s is not exported to Prometheus", name)
            return False
        ALERT_LAG.add((lag, kind, fed_by), bucket, value)
    elif name.startswith("dead_letters_"):
        PIPELINE_ITEMS.labels(name[len("dead_letters_"):], "dead_letter").inc(value)
    elif name.startswith("topic_"):
        TOPIC_MATCHES.labels(name[len("topic_"):]).inc(value)
    elif name in (ALERTS_CREATED, ALERTS_UPDATED):
        ALERTS.labels(name.removeprefix("alerts_")).inc(value)
    elif name == DOCUMENTS_WRITTEN:
        DOCUMENTS.labels("written").inc(value)
    elif name == EXACT_COPIES:
        DOCUMENTS.labels("exact_copy").inc(value)
    elif name == SURGES_RAISED:
        SURGES.labels("raised").inc(value)
    else:
        log.warning("Beam counter %s is not exported to Prometheus", name)
        return False
    return True


# --- output ------------------------------------------------------------------------------


class _Chain:
    """Collector that yields another registry's metrics (newsmon's, beside process ones)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class _WithoutHistograms:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            if family.type != "histogram":
                yield family


def serve(port: int, host: str = "127.0.0.1") -> Any:
    """Serve newsmon's metrics and the process's own at ``http://host:port/metrics`` from a
    daemon thread. Returns the server (``shutdown()`` stops it)."""
    live = CollectorRegistry()
    live.register(_Chain(REGISTRY))
    ProcessCollector(registry=live)
    server, _thread = start_http_server(port, addr=host, registry=live)
    log.info("metrics on http://%s:%s/metrics", host, server.server_port)
    return server


def resume_counters(path: Path) -> None:
    """Carry counters on from a previous textfile, so they keep growing across runs."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        log.warning("metrics file %s is not readable, counters start at 0: %s", path, exc)
        return
    for family in families:
        counter = _COUNTERS.get(family.name)
        if counter is None or family.type != "counter":
            continue
        names = counter._labelnames
        for sample in family.samples:
            if sample.name.endswith("_total") and set(sample.labels) == set(names):
                counter.labels(**sample.labels).inc(sample.value)


def write_textfile(path: Path) -> None:
    """Replace ``path`` atomically with the current metrics (no histograms)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_WithoutHistograms(REGISTRY))
    write_to_textfile(str(path), registry)


def record_run(command: str, ok: bool, seconds: float, ended_at: float | None = None) -> None:
    ended_at = time.time() if ended_at is None else ended_at
    LAST_RUN_TIMESTAMP.labels(command).set(ended_at)
    LAST_RUN_SECONDS.labels(command).set(seconds)
    LAST_RUN_SUCCESS.labels(command).set(1 if ok else 0)
    if ok:
        LAST_SUCCESS_TIMESTAMP.labels(command).set(ended_at)


def _previous_success(path: Path, command: str) -> float | None:
    """The last-success time recorded in an earlier file, so a failed run does not lose it."""
    try:
        families = text_string_to_metric_families(path.read_text(encoding="utf-8"))
        for family in families:
            if family.name == "newsmon_last_success_timestamp_seconds":
                for sample in family.samples:
                    if sample.labels.get("command") == command:
                        return float(sample.value)
    except (OSError, ValueError):
        return None
    return None


@contextmanager
def exported(
    command: str,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    textfile: Path | None = None,
) -> Iterator[None]:
    """Around one command: serve metrics on ``port`` while it runs; at the end record its
    duration and outcome and, with ``textfile``, write them there (also when it failed).

    Success is a normal exit or an exit with status 0 (``typer.Exit(0)``).
    """
    if textfile is not None:
        resume_counters(textfile)
        previous = _previous_success(textfile, command)
        if previous is not None:
            LAST_SUCCESS_TIMESTAMP.labels(command).set(previous)
    server = serve(port, host) if port is not None else None
    started = time.monotonic()
    ok = False
    try:
        yield
        ok = True
    except BaseException as exc:
        ok = getattr(exc, "exit_code", None) == 0
        raise
    finally:
        record_run(command, ok, time.monotonic() - started)
        if textfile is not None:
            try:
                write_textfile(textfile)
            except OSError as exc:
                log.error("cannot write metrics file %s: %s", textfile, exc)
        if server is not None:
            server.shutdown()
            server.server_close()


__all__ = [
    "REGISTRY",
    "apply_beam_counter",
    "delivery_counter",
    "exported",
    "serve",
    "stage_counter",
    "write_textfile",
]
