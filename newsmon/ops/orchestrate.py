"""What the commands do beyond parsing: building the poller, one ``newsmon run`` (poll, then
process), and copying the pollers' health and dead letters to the search store.

This layer is where the two halves meet: connectors publish, the pipeline processes, and
neither imports the other. Output goes through ``say`` (the command's echo), so the functions
run the same under the CLI and in tests.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsmon.config import Settings
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.health import source_health
from newsmon.connectors.publisher import KafkaPublisher, Publisher, SpoolPublisher
from newsmon.connectors.results import PollReport
from newsmon.connectors.runner import Poller
from newsmon.connectors.state import StateStore
from newsmon.ops import health
from newsmon.ops.loading import Complete
from newsmon.pipeline.store import DocumentStore, StoreUnavailable, open_store

if TYPE_CHECKING:
    from newsmon.connectors.sharding import ShardNames

log = logging.getLogger("newsmon")

Say = Callable[[str], None]


def state_path(settings: Settings) -> Path:
    """The pollers' state store (cursors, seen marks, health, poll dead letters)."""
    return settings.state_dir / "connectors.sqlite"


def state_paths(settings: Settings) -> list[Path]:
    """Every pollers' state store in ``state_dir``: the single poller's and those of the
    members of shard groups (``shard_state_path``), which hold the health of their own
    shards only; ``connectors.sqlite`` first, whether it exists or not."""
    members = sorted(settings.state_dir.glob("connectors.*.*.sqlite"))
    return [state_path(settings), *members]


def make_poller(settings: Settings, feeds: FeedsConfig, publisher: Publisher, *,
                archive: Path | None = None, progress: bool = False) -> Poller:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    return Poller(feeds, state_path(settings), publisher, archive_path=archive,
                  progress=progress)


def shard_state_path(settings: Settings, names: ShardNames) -> Path:
    """A sharing poller's own state store: one per member, so members may share a host."""
    group = settings.poller.shard_group
    return settings.state_dir / f"connectors.{group}.{names.member}.sqlite"


@contextmanager
def sharded_poller(settings: Settings, feeds: FeedsConfig, *,
                   archive: Path | None = None) -> Iterator[Poller]:
    """A poller that shares the sources with the other members of ``poller.shard_group``
    (connectors/sharding.py), in its group for the block. Raises KafkaError or
    KafkaUnavailable when the shard topics cannot be had, PublishError when they disagree
    with ``poller.shard_partitions``."""
    from newsmon.connectors.sharding import (
        ShardMember,
        TransactionalPublisher,
        assign,
        ensure_shard_topics,
        shard_names,
    )

    conf = settings.poller
    names = shard_names(settings.kafka, conf)
    shards = assign(feeds.sources, feeds.defaults, conf.shard_partitions)
    ensure_shard_topics(settings.kafka, names, conf.shard_partitions)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    publisher = TransactionalPublisher(settings.kafka, names, shards,
                                       conf.shard_transaction_timeout_ms)
    with closing(publisher), Poller(feeds, shard_state_path(settings, names), publisher,
                                    archive_path=archive) as poller:
        member = ShardMember(settings.kafka, conf, names, shards, poller.state)
        poller.share = member
        with member.start():
            yield poller


def poll_summary(report: PollReport) -> str:
    """The poll report's totals and failed sources, without its own status line: the command
    prints one status line of its own, the one its exit status agrees with."""
    lines = report.summary().splitlines()
    return "\n".join(line for line in lines if not line.startswith("status:"))


def publish_health(settings: Settings, feeds: FeedsConfig) -> None:
    """Copy the pollers' source health and dead letters into the search store (never fails
    the caller: the dashboards' copy being stale must not stop polling)."""
    store = open_store(settings.search, settings.state_dir)
    try:
        n = health.publish(store, source_health(feeds, state_paths(settings)))
        publish_poll_dead_letters(settings, store)
    finally:
        store.close()
    log.debug("source health of %d sources written to the %s store", n,
              settings.search.backend)


def publish_poll_dead_letters(settings: Settings, store: DocumentStore) -> None:
    """Copy the pollers' dead letters (kept in their state stores: the single poller's and
    every shard-group member's) to the dead-letter index, where `newsmon deadletters` and the
    dashboards show them beside the pipeline's."""
    for path in state_paths(settings):
        if path.exists():
            _publish_dead_letters_of(path, store)


def _publish_dead_letters_of(path: Path, store: DocumentStore) -> None:
    with StateStore(path) as state:
        letters = state.dead_letters(unpublished_only=True)
        if not letters:
            return
        try:
            failures = store.bulk_write("dead-letters", [
                (dl.dl_id, dl.document()) for dl in letters])
        except StoreUnavailable as exc:  # kept in the state store: the next pass copies them
            log.warning("%d poll dead letters of %s not copied to the search store yet: %s",
                        len(letters), path.name, exc)
            return
        failed = {f.doc_id for f in failures}
        state.mark_dead_letters_published(dl.dl_id for dl in letters if dl.dl_id not in failed)
    for failure in failures:  # kept unpublished: the next pass tries again
        log.warning("dead letter %s not written: %s", failure.doc_id, failure.error)


def run_context(config: Complete, *, kafka_dead_letters: bool = False) -> Any:
    """The pipeline's RunContext for a checked configuration (Beam is imported here, once
    the configuration is known to be valid: its import logs noise)."""
    from newsmon.pipeline.app import RunContext

    return RunContext(settings=config.settings, alerts=config.alerts,
                      dead_letters_to_kafka=kafka_dead_letters)


def run_once(config: Complete, *, demo: bool, say: Say) -> PollReport:
    """Poll, then process what was polled; returns the poll report (its sources' status is
    the run's). A service that is down raises (KafkaUnavailable, StoreUnavailable).

    On the embedded backend the items go through a spool file to the pipeline, in this
    process; otherwise through Kafka (and the pipeline's dead letters to Kafka too)."""
    from newsmon.pipeline.jobs import run_backfill, run_kafka_batch

    settings = config.settings
    embedded = settings.search.backend == "embedded"
    ctx = run_context(config, kafka_dead_letters=not embedded)
    if embedded:
        spool = SpoolPublisher(settings.state_dir)
        report = make_poller(settings, config.sources(), spool).poll_once(force=demo)
        say(poll_summary(report))
        publish_health(settings, config.sources())
        n = 0
        while (claimed := spool.claim()) is not None:
            n += run_backfill(claimed, ctx, progress=False)
            spool.done(claimed)
        store = open_store(settings.search, settings.state_dir)
        say(f"processed {n} new items; store {settings.state_dir / 'documents.sqlite'} holds "
            f"{store.count('articles')} articles, {store.count('alerts')} alerts, "
            f"{store.count('dead-letters')} dead letters")
        return report
    kafka_publisher = KafkaPublisher(settings.kafka)
    try:
        report = make_poller(settings, config.sources(), kafka_publisher).poll_once()
    finally:
        kafka_publisher.close()
    say(poll_summary(report))
    publish_health(settings, config.sources())
    summary = run_kafka_batch(ctx)
    say(f"processed {summary.records} records; offsets committed")
    return report


# --- the demo --------------------------------------------------------------------------------

#: Where `newsmon run --demo` writes the demo's configuration, under the demo's state_dir;
#: `newsmon report` without --config reads it when it is there (README, "The demo").
DEMO_CONFIG = Path("config") / "newsmon.yaml"

_RSS_DATE = re.compile(r"<pubDate>([^<]+)</pubDate>")
_ATOM_DATE = re.compile(r"<(updated|published)>([^<]+)</\1>")


def _feed_dates(xml: str) -> list[datetime]:
    found = [parsedate_to_datetime(m.group(1).strip()) for m in _RSS_DATE.finditer(xml)]
    found += [datetime.fromisoformat(m.group(2).strip()) for m in _ATOM_DATE.finditer(xml)]
    return found


def shift_feed_dates(xml: str, shift: timedelta) -> str:
    """The feed with every RSS ``pubDate`` and Atom ``updated``/``published`` moved by
    ``shift`` (each keeps its format and its UTC offset)."""
    def rss(m: re.Match[str]) -> str:
        return f"<pubDate>{format_datetime(parsedate_to_datetime(m.group(1).strip()) + shift)}" \
               "</pubDate>"

    def atom(m: re.Match[str]) -> str:
        moved = datetime.fromisoformat(m.group(2).strip()) + shift
        return f"<{m.group(1)}>{moved.isoformat().replace('+00:00', 'Z')}</{m.group(1)}>"

    return _ATOM_DATE.sub(atom, _RSS_DATE.sub(rss, xml))


def prepare_demo(shipped: Path, now: datetime) -> Path:
    """Write the demo's configuration under its state_dir and return its newsmon.yaml.

    The shipped demo feeds are fixtures with fixed dates; a demo run weeks later would find
    them too old to alert, and `newsmon report --since 7d` would show nothing. So the copy
    moves every date by the same whole number of days, the newest item landing in the day
    before ``now``: the items keep their order, spacing and time of day. Topics and alert
    rules are the shipped ones, named by absolute path.
    """
    import yaml

    from newsmon.config import load_checked_settings

    settings = load_checked_settings(shipped / "newsmon.yaml")
    target = (settings.state_dir / DEMO_CONFIG).resolve()
    (target.parent / "feeds").mkdir(parents=True, exist_ok=True)
    feeds = {p.name: p.read_text(encoding="utf-8")
             for p in sorted((shipped / "feeds").glob("*.xml"))}
    newest = max(d for xml in feeds.values() for d in _feed_dates(xml))
    shift = timedelta(days=(now - newest).days)
    for name, xml in feeds.items():
        (target.parent / "feeds" / name).write_text(shift_feed_dates(xml, shift),
                                                    encoding="utf-8")
    (target.parent / "feeds.yaml").write_text(
        (shipped / settings.feeds.name).read_text(encoding="utf-8"), encoding="utf-8")
    own = yaml.safe_load((shipped / "newsmon.yaml").read_text(encoding="utf-8"))
    own |= {"state_dir": str(settings.state_dir.resolve()), "feeds": "feeds.yaml",
            "topics": str((shipped / own["topics"]).resolve()),
            "alerts": str((shipped / own["alerts"]).resolve())}
    target.write_text(
        "# Written by `newsmon run --demo` from the shipped demo, its feeds' dates moved to\n"
        f"# the day it ran ({shift.days:+d} days). `newsmon report` reads it by default.\n"
        + yaml.safe_dump(own, sort_keys=False), encoding="utf-8")
    return target


def demo_config_here() -> Path | None:
    """The configuration a demo run left in this directory, if any."""
    from newsmon.config import load_checked_settings, shipped_config_dir
    from newsmon.configfile import ConfigError

    try:
        state_dir = load_checked_settings(shipped_config_dir() / "demo" / "newsmon.yaml").state_dir
    except ConfigError:  # no usable shipped demo: no demo to find
        return None
    path = state_dir / DEMO_CONFIG
    return path if path.is_file() else None


def demo_next_steps(config: Path) -> str:
    """What to try after `newsmon run --demo` (it prints this)."""
    where = config.parent.parent
    return "\n".join([
        "next:",
        "  newsmon report                  # report.html of the last 7 days from this demo "
        f"(the store in {where})",
        f"  newsmon alerts list -c {config}",
        f"  newsmon sources -c {config}",
        f"  newsmon deadletters -c {config}",
    ])
