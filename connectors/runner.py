"""Builds the pollers from config and runs them: once (for schedules) or continuously.

One poll of one source, in this order (the order is what makes "nothing lost, nothing
duplicated" hold):

1. ``connector.poll(cursor)``                    fetch and parse (worker thread)
2. dedup against the seen marks                  same item_id and revision: dropped;
                                                 same item_id, new revision: ``is_update``
3. ``connector.enrich(new items)``               full text, only for what is new (worker thread)
4. ``publisher.publish(items)``                  returns only when every item is acknowledged
5. seen marks + cursor, in one transaction       only now; a failure in 4 leaves both untouched,
                                                 so the next poll fetches and publishes again
6. health and the next due time

Concurrency: fetching is I/O-bound and each poll is a few blocking calls (HTTP, feedparser),
so a bounded thread pool does the fetching and parsing (steps 1-3) while the calling thread
publishes and writes state (steps 4-6) as results come in. Threads keep the connectors plain
synchronous code (feedparser, trafilatura and SQLite have no async API) and the bound
(``defaults.concurrency``) caps the sockets and memory in use; the GIL costs little because the
parsing is short next to the waiting. See bench/bench_poll.py for the numbers.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from newsmon.closing import Closing
from newsmon.connectors.base import (
    Connector,
    PollResult,
    Problem,
    SourceBase,
    Wiring,
    utc_now,
)
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.guard import AddressGuard
from newsmon.connectors.health import is_due, next_health
from newsmon.connectors.hosts import HostGate
from newsmon.connectors.http import HttpClient
from newsmon.connectors.items import dead_letters, new_items, publishable
from newsmon.connectors.metrics import observe_poll_report
from newsmon.connectors.publisher import ArchivingPublisher, Publisher, PublishError
from newsmon.connectors.records import Cursor, storable_cursor, storable_text
from newsmon.connectors.registry import connect
from newsmon.connectors.results import PollReport, ResultStatus, SourceResult
from newsmon.connectors.sharding import Share
from newsmon.connectors.state import StateStore
from newsmon.connectors.websub.schedule import push_schedule
from newsmon.metrics import FETCH_SECONDS, ITEMS, POLL_DEAD_LETTERS, POLLS, PROBLEMS
from newsmon.models import RawItem

log = logging.getLogger(__name__)

#: While Kafka is down, sources with unpublished items are retried after this, doubling up to
#: the maximum: quick recovery after a short outage, little load during a long one.
PUBLISH_RETRY_S = 5.0
PUBLISH_RETRY_MAX_S = 300.0
#: Jitter added to every next-due time, as a share of the delay: spreads a thousand feeds
#: configured with one interval over time instead of polling them in bursts.
JITTER = 0.1
#: How often the seen marks of items long gone from their feeds are pruned.
PRUNE_EVERY = timedelta(days=1)
#: How long run_forever sleeps at most before looking at the due times again.
MAX_IDLE_S = 30.0


@dataclass(frozen=True)
class _Fetched:
    """A poll result after dedup and enrichment, ready to publish (built in a worker)."""

    connector: Connector
    result: PollResult
    publish: tuple[RawItem, ...]
    new: int
    updated: int
    problems: tuple[Problem, ...]


class Poller(Closing):
    """Polls the configured sources and publishes their new items.

    ``http`` is the client for configured URLs (no address guard; tests pass one with small
    limits); article pages for full text always go through a guarded client that refuses
    private, loopback and link-local addresses unless ``allow_private``.
    """

    def __init__(
        self,
        config: FeedsConfig,
        state_path: Path,
        publisher: Publisher,
        *,
        archive_path: Path | None = None,
        allow_private: bool = False,
        clock: Callable[[], datetime] = utc_now,
        http: HttpClient | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
        progress: bool = False,
        share: Share | None = None,
    ) -> None:
        self.config = config
        #: When pollers share the sources: polls only those ``share`` holds.
        self.share = share
        #: Draw a progress bar over the sources of a ``poll_once`` pass (on a terminal only).
        self.progress = progress
        self.state = StateStore(state_path)
        self.publisher: Publisher = (
            ArchivingPublisher(publisher, archive_path) if archive_path else publisher
        )
        self.clock = clock
        self.rng = rng or random.Random()
        defaults = config.defaults
        self._own_http = http is None
        # One gate for both clients: a feed and its article pages are usually one host.
        self.gate = HostGate(defaults.per_host, defaults.hosts, now=lambda: clock().timestamp())
        self.http = http or HttpClient(
            defaults.http, max_connections=defaults.concurrency * 2, gate=self.gate,
            redirect_guard=AddressGuard(allow_private=allow_private),
        )
        self.article_http = HttpClient(
            defaults.http,
            guard=AddressGuard(allow_private=allow_private),
            max_connections=defaults.concurrency,
            gate=self.gate,
        )
        self.connectors: dict[str, Connector] = {}
        wiring = Wiring(defaults=defaults, http=self.http, article_http=self.article_http,
                        clock=clock, sleep=sleep)
        for source in config.sources:
            self.connectors[source.id] = connect(source, wiring)
        self._publish_failures = 0

    def close(self) -> None:
        """Release the state store and the HTTP clients (not the publisher: the caller's)."""
        self.state.close()
        self.article_http.close()
        if self._own_http:
            self.http.close()


    # --- public -------------------------------------------------------------------------

    def poll_once(self, *, force: bool = False) -> PollReport:
        """Poll every due source once (``force``: every enabled one, due or not). Run by a
        timer every ``defaults.schedule_tick_s``, so a source falling due before the next tick
        counts as due (health.is_due)."""
        return self._poll_due(force=force, stop=None)

    def run_forever(self, stop: threading.Event) -> None:
        """Poll due sources until ``stop`` is set; stops between sources (a source's items are
        published and marked as one unit) and never leaves a half-recorded poll."""
        log.info("poller started: %s sources%s", len(self.config.enabled),
                 " shared with the other pollers of its group" if self.share else "")
        while not stop.is_set():
            report = self._poll_due(force=False, stop=stop)
            if report.results:
                log.info("%s", report.summary().splitlines()[0])
            if stop.is_set():
                break
            self._sleep(stop, self._idle_seconds())
        log.info("poller stopped")

    def _sleep(self, stop: threading.Event, seconds: float) -> None:
        """Wait ``seconds``, or less when stopped or when the sources held change."""
        if self.share is None:
            stop.wait(seconds)
            return
        end = time.monotonic() + seconds
        while not stop.is_set() and not self.share.changed() and (
                left := end - time.monotonic()) > 0:
            stop.wait(min(0.5, left))

    def _mine(self) -> tuple[SourceBase, ...]:
        """The enabled sources this poller polls: all of them, or those its share holds."""
        share = self.share
        enabled = self.config.enabled
        return enabled if share is None else tuple(s for s in enabled if share.owns(s.id))

    def deliver(self, connector: Connector) -> SourceResult:
        """Take ``connector``'s poll now through every step of a scheduled one (dedup,
        enrichment, publishing, seen marks, health). WebSub hands pushed documents over this
        way, as a connector whose poll returns them (connectors/websub/subscriber.py)."""
        return self._record(self._fetch(connector), None)[0]

    # --- one pass ---------------------------------------------------------------------------

    def _idle_seconds(self) -> float:
        now = self.clock()
        due_times = []
        for source in self._mine():
            health = self.state.health(source.id)
            if health.disabled:
                continue
            if health.next_due_at is None:
                return 0.0
            due_times.append((health.next_due_at - now).total_seconds())
        if not due_times:
            return MAX_IDLE_S
        return min(MAX_IDLE_S, max(0.5, min(due_times)))

    def prune_seen(self) -> int:
        """Forget items gone from their feeds for longer than ``seen_retention_days``."""
        retention = timedelta(days=self.config.defaults.seen_retention_days)
        pruned = self.state.prune_seen(now=self.clock(), retention=retention)
        if pruned:
            log.info("state: forgot %s items absent from their sources for %s days", pruned,
                     retention.days)
        return pruned

    def _prune_if_due(self) -> None:
        last = self.state.last_prune_at()
        if last is None or self.clock() - last >= PRUNE_EVERY:
            self.prune_seen()

    def _poll_due(self, *, force: bool, stop: threading.Event | None) -> PollReport:
        self._prune_if_due()
        started = self.clock()
        results: list[SourceResult] = []
        due: list[SourceBase] = []
        not_due = 0
        # The long-running poller wakes when a source falls due: only a timer's pass (``poll
        # --once``) must reach into the period up to its next tick.
        tick_s = float(self.config.defaults.schedule_tick_s) if stop is None else 0.0
        floor_s = float(self.config.defaults.min_interval_s)
        for source in self._mine():
            health = self.state.health(source.id)
            if health.disabled:
                results.append(
                    SourceResult(
                        source_id=source.id, type=source.type, status="disabled",
                        error_kind=health.last_error_kind, error=health.disabled_reason,
                    )
                )
            elif force or is_due(health, started, tick_s=tick_s, floor_s=floor_s):
                due.append(source)
            else:
                not_due += 1
        stopped = False
        share = self.share
        claimed: set[str] = set()
        if due and share is not None:
            claimed = share.claim([s.id for s in due])
            due = [s for s in due if s.id in claimed]
        try:
            if due:
                stopped = self._poll_sources(due, results, stop)
        finally:
            if share is not None:
                for source_id in claimed:
                    share.release(source_id)
        report = PollReport(
            started_at=started,
            finished_at=self.clock(),
            results=tuple(results),
            not_due=not_due,
            stopped=stopped,
        )
        observe_poll_report(report, "once" if stop is None else "forever")
        return report

    def _poll_sources(
        self,
        due: Sequence[SourceBase],
        results: list[SourceResult],
        stop: threading.Event | None,
    ) -> bool:
        kafka_down: str | None = None
        workers = max(1, min(self.config.defaults.concurrency, len(due)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="newsmon-poll") as pool:
            futures: dict[Future[_Fetched], SourceBase] = {
                pool.submit(self._fetch, self.connectors[s.id]): s for s in due
            }
            completed: Iterable[Future[_Fetched]] = as_completed(futures)
            if self.progress and stop is None:
                from tqdm import tqdm

                # disable=None: no bar unless stderr is a terminal (cron, logs stay clean).
                completed = tqdm(completed, total=len(futures), desc="poll", unit="source",
                                 disable=None, leave=False)
            try:
                for future in completed:
                    if stop is not None and stop.is_set():
                        # What was fetched but not published is not marked seen either: the
                        # next run fetches it again. Nothing is half-recorded.
                        log.info("stop requested: %s sources left for the next run",
                                 sum(1 for f in futures if not f.done()))
                        return True
                    fetched = future.result()
                    source_id = fetched.connector.source.id
                    with self._holding(source_id) as mine:
                        if mine:
                            result, kafka_down = self._record(fetched, kafka_down)
                            results.append(result)
                        else:
                            # Its shard moved to another poller meanwhile: that one polls it.
                            log.info("source %s: moved to another poller; this poll is "
                                     "dropped", source_id)
                    if self.share is not None:
                        self.share.release(source_id)
            finally:
                for future in futures:
                    future.cancel()
        return False

    def _holding(self, source_id: str) -> AbstractContextManager[bool]:
        return nullcontext(True) if self.share is None else self.share.recording(source_id)

    def _fetch(self, connector: Connector) -> _Fetched:
        """Worker thread: poll, dedup, enrich. Never raises: a bug in a connector becomes an
        error result of kind ``internal`` so one source cannot stop the others."""
        source = connector.source
        cursor = Cursor()
        started = time.monotonic()
        try:
            cursor = self.state.cursor(source.id)
            result = connector.poll(cursor)
            items, _, _, problems = new_items(result.items, self.state, source.id)
            enriched, enrich_problems = connector.enrich(items)
            publish, unstorable = publishable(enriched)
        except Exception as exc:  # a bug in one connector must not stop the others
            log.exception("source %s: connector failed", source.id)
            failure = PollResult.failed(cursor, "internal", f"{type(exc).__name__}: {exc}")
            return _Fetched(connector, failure, (), 0, 0, ())
        finally:
            FETCH_SECONDS.labels(source.type).observe(time.monotonic() - started)
        updated = sum(1 for item in publish if item.is_update)
        return _Fetched(
            connector, result, publish, len(publish) - updated, updated,
            result.problems + tuple(problems) + enrich_problems + tuple(unstorable),
        )

    def _record(
        self, fetched: _Fetched, kafka_down: str | None
    ) -> tuple[SourceResult, str | None]:
        """Calling thread: publish, then mark seen with the cursor, then health. Never raises:
        when recording one source fails (the state store refusing a value, a full disk), that
        source's result is an error of kind ``record-failed`` and a dead letter, and the pass
        goes on with the other sources."""
        try:
            return self._record_poll(fetched, kafka_down)
        except Exception as exc:  # one source's bookkeeping must not stop the pass
            log.exception("source %s: recording the poll failed", fetched.connector.source.id)
            return self._record_failure(fetched, exc), kafka_down

    def _record_poll(
        self, fetched: _Fetched, kafka_down: str | None
    ) -> tuple[SourceResult, str | None]:
        source = fetched.connector.source
        result = fetched.result
        now = self.clock()
        # Checked before publishing: nothing after the publish may fail on the poll's data.
        cursor, replaced = storable_cursor(result.cursor, self.state.cursor(source.id))
        if replaced:
            bad = Problem(kind="bad-cursor", message=f"not storable: {', '.join(replaced)}")
            fetched = replace(fetched, problems=(*fetched.problems, bad))
            log.warning("source %s: cursor fields %s not storable, not kept", source.id,
                        ", ".join(replaced))
        for problem in fetched.problems:
            PROBLEMS.labels(source.type, problem.kind).inc()
        self._park(source, result, fetched.problems)
        if fetched.publish:
            try:
                if kafka_down is not None:
                    # Kafka failed for an earlier source of this pass: do not wait out its
                    # timeout once per source.
                    raise PublishError(f"not attempted: {kafka_down}")
                self.publisher.publish(fetched.publish)
            except PublishError as exc:
                kafka_down = kafka_down or str(exc)
                return self._record_publish_failure(source, result, fetched, exc, now), kafka_down
            self._publish_failures = 0
        marks = {i.item_id: (i.revision, i.first_seen_at) for i in fetched.publish}
        # Only a complete document says which items are still there (a partial Telegram
        # poll or an error does not).
        present = [i.item_id for i in result.items] if result.status == "ok" else None
        # A failed or throttled poll carries the old cursor: nothing to store (and after a
        # failure to read the stored one, storing it would wipe it).
        moved = cursor if result.status in ("ok", "not-modified") else None
        self.state.mark_seen(source.id, marks, now=now, cursor=moved, present=present)
        ITEMS.labels(source.type, "new").inc(fetched.new)
        ITEMS.labels(source.type, "updated").inc(fetched.updated)
        POLLS.labels(source.type, result.status).inc()
        health = next_health(self.state.health(source.id), self.config, source, result,
                             new=fetched.new, problems=len(fetched.problems), now=now,
                             jitter=self._jittered)
        health = push_schedule(self.state, self.config, source, health, now)
        self.state.save_health(health)
        if fetched.new or fetched.updated:
            log.info("source %s: %s new, %s updated items published", source.id, fetched.new,
                     fetched.updated)
        status: ResultStatus = "disabled" if health.disabled else result.status
        return (
            SourceResult(
                source_id=source.id,
                type=source.type,
                status=status,
                new_items=fetched.new,
                updated_items=fetched.updated,
                problems=len(fetched.problems),
                http_status=result.http_status,
                error_kind=result.error_kind,
                error=health.disabled_reason if health.disabled else result.error,
                next_due_at=health.next_due_at,
            ),
            kafka_down,
        )

    def _record_failure(self, fetched: _Fetched, exc: Exception) -> SourceResult:
        """The result of a source whose poll could not be recorded: an error (soft: the next
        poll tries again with backoff), parked as a dead letter. Each step is tried on its own,
        so a state store that refuses one write still gets the others."""
        source = fetched.connector.source
        now = self.clock()
        message = storable_text(f"{type(exc).__name__}: {exc}", 1000)
        failure = PollResult.failed(fetched.result.cursor, "record-failed", message,
                                    http_status=fetched.result.http_status)
        POLLS.labels(source.type, "error").inc()
        next_due: datetime | None = None
        try:
            self._park(source, failure, ())
        except Exception:  # logged; the health below may still be written
            log.exception("source %s: the dead letter of the failed record was not written",
                          source.id)
        try:
            health = next_health(self.state.health(source.id), self.config, source, failure,
                                 new=0, problems=len(fetched.problems), now=now,
                                 jitter=self._jittered)
            self.state.save_health(health)
            next_due = health.next_due_at
        except Exception:  # logged; the pass goes on
            log.exception("source %s: health not written", source.id)
        return SourceResult(
            source_id=source.id, type=source.type, status="error",
            problems=len(fetched.problems), http_status=fetched.result.http_status,
            error_kind="record-failed", error=message, next_due_at=next_due,
        )

    def _park(self, source: SourceBase, result: PollResult,
              problems: Sequence[Problem]) -> None:
        """Dead letters for what this poll could not turn into items: a failed fetch or
        document, and entries or posts that had to be dropped. Kept in the state store and
        copied to the search store's dead-letter index after each pass (``newsmon
        deadletters``); the poller re-fetches on its schedule, so they are for people."""
        letters = dead_letters(source, result, problems)
        if letters and (new := self.state.add_dead_letters(letters)):
            POLL_DEAD_LETTERS.labels(source.type).inc(new)
            log.warning("source %s: %s new dead letter(s), first: %s", source.id, new,
                        letters[0].error)

    def _record_publish_failure(
        self,
        source: SourceBase,
        result: PollResult,
        fetched: _Fetched,
        exc: PublishError,
        now: datetime,
    ) -> SourceResult:
        """Nothing marked, the cursor not moved: the next poll fetches the same items again
        (a 200, not a 304) and publishes them. Kafka being down is not the source's fault, so
        its failure counts stay as they were."""
        self._publish_failures += 1
        delay = min(PUBLISH_RETRY_MAX_S, PUBLISH_RETRY_S * 2 ** (self._publish_failures - 1))
        log.warning("source %s: %s items not published, retry in %.0fs: %s",
                    source.id, len(fetched.publish), delay, exc)
        POLLS.labels(source.type, "publish-failed").inc()
        health = self.state.health(source.id)
        self.state.save_health(
            health.model_copy(
                update={
                    "last_poll_at": now,
                    "last_error": f"publish: {exc}",
                    "last_error_kind": "publish",
                    "last_error_at": now,
                    "next_due_at": now + timedelta(seconds=delay),
                }
            )
        )
        return SourceResult(
            source_id=source.id,
            type=source.type,
            status="publish-failed",
            new_items=0,
            updated_items=0,
            problems=len(fetched.problems),
            http_status=result.http_status,
            error_kind="publish",
            error=str(exc),
            next_due_at=now + timedelta(seconds=delay),
        )

    # --- scheduling -----------------------------------------------------------------------

    def _jittered(self, seconds: float) -> float:
        return seconds + self.rng.uniform(0, JITTER * seconds)


__all__ = ["Cursor", "PollReport", "Poller", "SourceResult"]
