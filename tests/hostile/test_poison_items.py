"""Poison items: an item, a cursor or a state write that cannot be stored costs one dead letter
(or that source's result), never the pass. The poller checks what it will publish and store
before publishing (an item published but never marked would be published again on every
poll), and a source whose poll cannot be recorded becomes an error result while the other
sources of the pass are recorded as usual. Real poller, real state store, local servers, the
`newsmon` command, and the shared Kafka for the message size limit.
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsmon.config import KafkaSettings
from newsmon.connectors.base import Defaults, PollResult, Problem
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.items import MAX_ITEM_BYTES
from newsmon.connectors.publisher import KafkaPublisher, ListPublisher
from newsmon.connectors.records import Cursor, Health, storable_cursor
from newsmon.connectors.rss import RssSource
from newsmon.connectors.runner import Poller
from newsmon.connectors.state import StateStore
from newsmon.connectors.telegram import TelegramSource
from newsmon.models import DeadLetter, RawItem, SourceRef
from newsmon.pipeline.store import SqliteStore
from tests.connectors.feeds import Entry, embedded_config, rss
from tests.connectors.server import LocalServer, Reply, serve
from tests.connectors.test_kafka import consume, topic  # noqa: F401 - a fixture, used by name
from tests.connectors.tgpages import page, post

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
NEWSMON = Path(sys.executable).parent / "newsmon"
CHANNEL = "poison_chan"
POISON_IDS = (2**63, 2**64 + 1)
RSS = {"Content-Type": "application/rss+xml"}


def defaults(**kw: object) -> Defaults:
    # concurrency 1: sources are recorded in config order, so "the sources after the poison
    # one" are a fixed set.
    return Defaults.model_validate({"min_interval_s": 0, "telegram_page_delay_s": 0,
                                    "concurrency": 1, **kw})


def channel_page() -> bytes:
    posts = [post(CHANNEL, 5, "Ukraine receives new air defence systems"),
             *(post(CHANNEL, n, f"Poison post {n}") for n in POISON_IDS),
             post(CHANNEL, 6, "NATO ministers meet in Brussels on Ukraine")]
    return page(CHANNEL, posts)


def sources(server: LocalServer) -> tuple[TelegramSource, RssSource]:
    tg = TelegramSource(id="tg-poison", type="telegram", channel=CHANNEL,
                        base_url=server.url(""), name="Poison", lang="en", country="GB")
    feed = RssSource(id="feed-after", type="rss", url=server.url("/feed"), name="After",
                     lang="en", country="GB")
    return tg, feed


def serve_both(server: LocalServer) -> None:
    server.route(f"/s/{CHANNEL}", Reply(channel_page()))
    server.route("/feed", Reply(rss([Entry(guid="after-1", title="Sanctions on Russia widened",
                                           link="https://n.example/after-1")]), headers=RSS))


def test_post_ids_past_the_store_are_one_dead_letter_each_and_the_pass_goes_on(
        tmp_path: Path) -> None:
    with serve() as server:
        serve_both(server)
        config = FeedsConfig(defaults=defaults(), sources=sources(server))
        published = ListPublisher()
        with Poller(config, tmp_path / "state.sqlite", published,
                    rng=random.Random(3)) as poller:
            first = poller.poll_once(force=True)
            second = poller.poll_once(force=True)
            letters = poller.state.dead_letters()
            feed_health = poller.state.health("feed-after")
            cursor = poller.state.cursor("tg-poison")
    assert first.ok and second.ok, first.summary()
    assert [r.source_id for r in first.results] == ["tg-poison", "feed-after"]
    assert first.new_items == 3 and second.new_items == 0  # published once, not every pass
    assert sorted(i.title for i in published.items) == [
        "NATO ministers meet in Brussels on Ukraine", "Sanctions on Russia widened",
        "Ukraine receives new air defence systems"]
    assert sorted(json.loads(dl.payload)["detail"] for dl in letters) == sorted(
        f"data-post '{CHANNEL}/{n}': no message id in 1..{2**63 - 1}" for n in POISON_IDS)
    assert feed_health.last_success_at is not None and feed_health.items_seen == 1
    assert cursor.last_message_id == 6


@pytest.mark.parametrize(("header", "value"), [
    ("ETag", '"é"'),  # stored, then sent back: UnicodeEncodeError on every later poll
    ("ETag", '"' + "x" * 5000 + '"'),
    ("Last-Modified", "Mon, 25 Nov 2024 10:00:00 GMT\u00a0"),
    ("Last-Modified", "Ünïcode"),
])
def test_a_validator_header_that_cannot_be_sent_back_costs_the_conditional_get_only(
        tmp_path: Path, header: str, value: str) -> None:
    with serve() as server:
        server.route("/feed", Reply(rss([Entry(guid="a", title="A", link="https://n.example/a")]),
                                    headers={**RSS, header: value}))
        config = FeedsConfig(defaults=defaults(), sources=(sources(server)[1],))
        with Poller(config, tmp_path / "state.sqlite", ListPublisher()) as poller:
            reports = [poller.poll_once(force=True) for _ in range(3)]
            cursor = poller.state.cursor("feed-after")
            health = poller.state.health("feed-after")
    assert [r.results[0].status for r in reports] == ["ok", "not-modified", "not-modified"]
    assert cursor.etag is None and cursor.last_modified is None and cursor.body_sha256
    # The client drops the validator before it reaches the cursor (connectors/fields.py
    # header_token); records.storable_cursor is the second line of defence.
    assert health.consecutive_failures == 0
    assert all("if-none-match" not in r.headers and "if-modified-since" not in r.headers
               for r in server.hits("/feed"))


def test_every_cursor_field_is_checked_before_it_is_stored() -> None:
    """A field added to Cursor without a check in records.storable_cursor fails here."""
    hostile = Cursor.model_construct(**{name: object() for name in Cursor.model_fields})
    cleaned, replaced = storable_cursor(hostile, Cursor())
    assert set(replaced) == set(Cursor.model_fields)
    assert cleaned == Cursor()


# --- a source whose record fails --------------------------------------------------------------


class SpoolFullFor(ListPublisher):
    """Publishes like the embedded spool, but the disk is full for the items of ``failing``:
    an OSError, not a PublishError (no publisher promises only those)."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing: str | None = failing

    def publish(self, items: Sequence[RawItem]) -> None:
        if any(i.source.id == self.failing for i in items):
            raise OSError(28, "No space left on device")
        super().publish(items)


class StoreFailing(StateStore):
    """The real store, whose writes for one source fail as a full disk makes SQLite fail:
    the seen marks only, or (``everything``) its health and dead letters too."""

    def __init__(self, path: Path, failing: str, *, everything: bool = False) -> None:
        super().__init__(path)
        self.failing = failing
        self.everything = everything

    def _full(self, source_id: str, *, always: bool = False) -> None:
        if source_id == self.failing and (always or self.everything):
            raise sqlite3.OperationalError("database or disk is full")

    def mark_seen(self, source_id: str, revisions: Mapping[str, tuple[str, datetime]], *,
                  now: datetime, cursor: Cursor | None = None,
                  present: Iterable[str] | None = None) -> None:
        self._full(source_id, always=True)
        super().mark_seen(source_id, revisions, now=now, cursor=cursor, present=present)

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> int:
        for letter in letters:
            self._full(letter.source_id)
        return super().add_dead_letters(letters)

    def save_health(self, health: Health) -> None:
        self._full(health.source_id)
        super().save_health(health)


def three_feeds(server: LocalServer) -> FeedsConfig:
    for name in ("a", "b", "c"):
        server.route(f"/{name}", Reply(rss([Entry(guid=f"{name}-1", title=f"Item {name}",
                                                  link=f"https://n.example/{name}")]),
                                       headers=RSS))
    return FeedsConfig(defaults=defaults(), sources=tuple(
        RssSource(id=f"feed-{name}", type="rss", url=server.url(f"/{name}"), name=name,
                  lang="en", country="GB") for name in ("a", "b", "c")))


def test_a_publisher_failing_with_an_unexpected_error_costs_only_its_source(
        tmp_path: Path) -> None:
    with serve() as server:
        config = three_feeds(server)
        publisher = SpoolFullFor("feed-a")
        with Poller(config, tmp_path / "state.sqlite", publisher) as poller:
            report = poller.poll_once(force=True)
            letters = poller.state.dead_letters()
            failed = poller.state.health("feed-a")
            publisher.failing = None  # space again: nothing was lost
            again = poller.poll_once(force=True)
    by_id = {r.source_id: r for r in report.results}
    assert (by_id["feed-a"].status, by_id["feed-a"].error_kind) == ("error", "record-failed")
    assert "No space left on device" in (by_id["feed-a"].error or "")
    assert by_id["feed-b"].status == by_id["feed-c"].status == "ok"
    assert failed.consecutive_failures == 1 and failed.hard_failures == 0
    assert [(dl.source_id, json.loads(dl.payload)["kind"]) for dl in letters] == [
        ("feed-a", "record-failed")]
    assert again.ok and again.new_items == 1  # feed-a's item, published now
    assert sorted(i.title for i in publisher.items) == ["Item a", "Item b", "Item c"]


@pytest.mark.parametrize("everything", [False, True], ids=["seen-marks", "every-write"])
def test_a_state_store_refusing_one_sources_writes_costs_only_that_source(
        tmp_path: Path, everything: bool) -> None:
    with serve() as server:
        config = three_feeds(server)
        published = ListPublisher()
        poller = Poller(config, tmp_path / "state.sqlite", published)
        poller.state.close()
        poller.state = StoreFailing(tmp_path / "state.sqlite", "feed-b", everything=everything)
        with poller:
            report = poller.poll_once(force=True)  # never raises
            letters = poller.state.dead_letters()
            marked = {sid: poller.state.seen_count(sid) for sid in ("feed-a", "feed-b", "feed-c")}
    statuses = {r.source_id: (r.status, r.error_kind) for r in report.results}
    assert statuses == {"feed-a": ("ok", None), "feed-b": ("error", "record-failed"),
                        "feed-c": ("ok", None)}
    assert marked == {"feed-a": 1, "feed-b": 0, "feed-c": 1}
    # a dead letter when the store takes one; when it refuses even that, the log has it
    assert [dl.source_id for dl in letters] == ([] if everything else ["feed-b"])


# --- the message size limit, on the real Kafka ----------------------------------------------


@pytest.mark.integration
@pytest.mark.usefixtures("topic")
def test_an_item_over_the_message_limit_is_parked_and_the_rest_reach_kafka(
        kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    big = "Oversized report. " * (MAX_ITEM_BYTES // 18)
    entries = [Entry(guid="small-1", title="Small item one about Ukraine"),
               Entry(guid="huge", title="Huge item", description=big),
               Entry(guid="small-3", title="Small item three about NATO")]
    publisher = KafkaPublisher(kafka_settings)
    try:
        with serve() as server:
            server.route("/feed", Reply(rss(entries), headers=RSS))
            _, feed = sources(server)
            config = FeedsConfig(defaults=defaults(), sources=(feed,))
            with Poller(config, tmp_path / "state.sqlite", publisher) as poller:
                first = poller.poll_once(force=True)
                second = poller.poll_once(force=True)
                letters = poller.state.dead_letters()
    finally:
        publisher.close()
    # Without the check, kafka-python refuses the batch: publish-failed on every poll.
    assert first.ok and first.new_items == 2 and second.new_items == 0, first.summary()
    records = consume(kafka_settings.bootstrap_servers, kafka_settings.raw_topic,
                      at_least=2)
    assert sorted(RawItem.from_json(r.value).title for r in records) == [  # type: ignore[attr-defined]
        "Small item one about Ukraine", "Small item three about NATO"]
    (letter,) = letters
    assert letter.error.startswith("unstorable-item: 'huge': ")
    assert f"over the {MAX_ITEM_BYTES}" in letter.error


# --- the `newsmon run` command ---------------------------------------------------------------


def write_config(tmp_path: Path, server: LocalServer) -> Path:
    tg, feed = sources(server)
    return embedded_config(tmp_path, {
        "defaults": {"interval_s": 1, "telegram_interval_s": 1, "min_interval_s": 0,
                     "telegram_page_delay_s": 0, "concurrency": 1},
        "sources": [tg.model_dump(mode="json", exclude_defaults=True),
                    feed.model_dump(mode="json", exclude_defaults=True)]})


def test_newsmon_run_parks_poison_posts_and_records_every_source(tmp_path: Path) -> None:
    """``newsmon run`` on a channel with post ids 2**63 and 2**64+1 beside good posts, and a
    feed after it: exit status 0 with ``status: OK`` (no source failed: every item was
    published or parked), no traceback, the good posts indexed once, one dead letter per
    poison post however often it runs, the feed recorded."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    with serve() as server:
        serve_both(server)
        config = write_config(tmp_path, server)
        runs = []
        for _ in range(2):
            runs.append(subprocess.run([str(NEWSMON), "run", "-c", str(config)],
                                       capture_output=True, text=True, timeout=180, env=env,
                                       cwd=tmp_path))
            time.sleep(1.5)  # the sources are due again (interval 1 s, jitter 10 %)
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Traceback" not in run.stdout + run.stderr, run.stderr[-3000:]
        assert "status: OK" in run.stdout
        assert "polled 2 sources" in run.stdout, run.stdout
    assert "processed 3 new items" in runs[0].stdout, runs[0].stdout
    assert "processed 0 new items" in runs[1].stdout, runs[1].stdout
    articles = SqliteStore(tmp_path / "state" / "documents.sqlite").all_docs("articles")
    assert sorted(doc["url"] for doc in articles) == [
        "https://n.example/after-1", f"https://t.me/{CHANNEL}/5", f"https://t.me/{CHANNEL}/6"]
    with StateStore(tmp_path / "state" / "connectors.sqlite") as state:
        letters = state.dead_letters()
        feed = state.health("feed-after")
    assert sorted(dl.error for dl in letters) == sorted(
        f"bad-post: data-post '{CHANNEL}/{n}': no message id in 1..{2**63 - 1}"
        for n in POISON_IDS)
    assert feed.last_success_at is not None and feed.consecutive_failures == 0
    listed = subprocess.run([str(NEWSMON), "deadletters", "--json", "-c", str(config)],
                            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr[-3000:]
    listed_poll = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(dl["dl_id"] for dl in listed_poll if dl["stage"] == "poll") == sorted(
        dl.dl_id for dl in letters)


# --- property: hostile items through the poller -----------------------------------------------


class Scripted:
    """A connector that returns what the test hands it: the items and cursor a buggy or
    fooled connector could build (``model_construct`` validates nothing, as ``model_copy``)."""

    def __init__(self, source: TelegramSource) -> None:
        self._source = source
        self.result = PollResult(status="ok", cursor=Cursor())

    @property
    def source(self) -> TelegramSource:
        return self._source

    def poll(self, cursor: Cursor) -> PollResult:
        return self.result

    def enrich(self, items: Sequence[RawItem]) -> tuple[tuple[RawItem, ...], tuple[Problem, ...]]:
        return tuple(items), ()


PLUS_ONE, MINUS_ONE = timezone(timedelta(hours=1)), timezone(timedelta(hours=-1))
HOSTILE_TEXT = st.one_of(st.text(max_size=30), st.sampled_from([
    "\udc80", "a\ud800b", "\x00", "x" * 300, "ok"]))
HOSTILE_TIMES = st.one_of(st.none(), st.sampled_from([
    datetime(1, 1, 1, tzinfo=PLUS_ONE), datetime(9999, 12, 31, 23, 30, tzinfo=MINUS_ONE),
    datetime(2024, 11, 25, 12, 0), datetime(2024, 11, 25, 12, 0, tzinfo=UTC)]))
HOSTILE_IDS = st.sampled_from(["", "x" * 300, "a\udc80", "a\x00b"])
SEQUENCE = itertools.count()
SOURCE = SourceRef(id="tg-scripted", type="telegram")


@st.composite
def hostile_items(draw: st.DrawFn) -> RawItem:
    n = next(SEQUENCE)
    good = RawItem.make(source=SOURCE, guid=f"guid-{n}", title=f"Title {n}",
                        first_seen_at=datetime(2024, 11, 25, 12, 0, tzinfo=UTC))
    fields = good.model_dump()
    fields["source"] = SOURCE
    # At most two hostile fields per item, so that each reason to park one is met often.
    for name in draw(st.lists(st.sampled_from(["item_id", "revision", "guid", "title",
                                               "content", "huge", "published_at",
                                               "first_seen_at"]),
                              max_size=2, unique=True)):
        if name in ("item_id", "revision"):
            fields[name] = draw(HOSTILE_IDS)
        elif name in ("published_at", "first_seen_at"):
            fields[name] = draw(HOSTILE_TIMES)
        elif name == "huge":
            fields["content"] = "c" * (MAX_ITEM_BYTES + 1)
        elif name == "content":
            fields[name] = draw(HOSTILE_TEXT)
        else:
            fields[name] = f"{n} " + draw(HOSTILE_TEXT)  # still one of a kind
    return RawItem.model_construct(**fields)


CURSOR_TEXT = st.sampled_from([None, '"e1"', "a\x00b", "a\r\nX-Injected: 1", "é", "x" * 5000,
                               "\udc80", "Mon, 25 Nov 2024 10:00:00 GMT"])
CURSORS = st.builds(
    lambda etag, modified, message, digest: Cursor.model_construct(
        etag=etag, last_modified=modified, last_message_id=message, body_sha256=digest),
    CURSOR_TEXT, CURSOR_TEXT, st.sampled_from([None, 0, 7, -1, 2**63, 2**64 + 1, True]),
    st.sampled_from([None, "ab" * 32, "\udc80", "x" * 1000]))


@settings(max_examples=60, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_items(), min_size=1, max_size=6), CURSORS)
def test_hostile_items_never_stop_the_poller_and_every_dropped_one_is_parked(
        items: list[RawItem], cursor: Cursor) -> None:
    source = TelegramSource(id="tg-scripted", type="telegram", channel="scripted",
                            base_url="http://127.0.0.1:9", name="S", lang="en", country="GB")
    published = ListPublisher()
    with tempfile.TemporaryDirectory() as tmp, Poller(
            FeedsConfig(defaults=defaults(), sources=(source,)), Path(tmp) / "state.sqlite",
            published) as poller:
        scripted = Scripted(source)
        poller.connectors[source.id] = scripted
        scripted.result = PollResult.model_construct(
            status="ok", cursor=cursor, items=tuple(items), problems=(), skipped=0,
            http_status=200, error_kind=None, error=None, hard=False, retry_after_s=None,
            ttl_s=None)
        (result,) = poller.poll_once(force=True).results  # never raises
        letters = poller.state.dead_letters()
        stored = poller.state.cursor(source.id)
        marked = poller.state.seen_revisions(source.id, (i.item_id for i in published.items))
        health = poller.state.health(source.id)
    assert result.status == "ok", result
    # what went out can be read back, is marked seen, and fits a Kafka message
    for item in published.items:
        data = item.to_json()
        assert RawItem.from_json(data) is not None and len(data) <= MAX_ITEM_BYTES
        assert marked[item.item_id].revision == item.revision
    # every item that did not go out is one dead letter saying why (a repeat of an id in
    # one document is not an item of its own: counted as a duplicate, as for any feed)
    out = {id(i) for i in published.items}
    firsts = list({i.item_id: i for i in reversed(items)}.values())
    dropped = [i for i in firsts if id(i) not in out]
    parked = [dl for dl in letters if json.loads(dl.payload)["kind"] == "unstorable-item"]
    assert len(parked) == len(dropped) == len(firsts) - len(published.items)
    assert all(dl.error.startswith("unstorable-item: ") for dl in parked)
    # the cursor is stored as far as it can be, and can be sent back as headers
    for text in (stored.etag, stored.last_modified):
        assert text is None or (text.isascii() and text.isprintable() and len(text) <= 1024)
    assert stored.last_message_id in (None, 0, 7)
    assert health.last_success_at is not None
