"""The poller: dedup across restarts, updates, conditional GET, backoff, disabling, full text,
publish failures, the archive, stopping, and the health report. Local servers, no Kafka."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsmon.cli import render
from newsmon.connectors.base import Defaults, PollResult
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.health import source_health
from newsmon.connectors.publisher import ListPublisher, PublishError, read_archive
from newsmon.connectors.records import Cursor
from newsmon.connectors.results import PollReport, SourceResult
from newsmon.connectors.rss import RssSource
from newsmon.connectors.runner import Poller
from newsmon.connectors.state import StateStore
from newsmon.connectors.telegram import TelegramSource
from newsmon.models import RawItem
from tests.connectors.feeds import Entry, fixture, rss
from tests.connectors.server import LocalServer, Reply, Request
from tests.connectors.tgpages import channel_pages, page

START = datetime(2024, 11, 25, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FlakyPublisher(ListPublisher):
    """Fails while ``down`` is set, like a Kafka that does not acknowledge."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.attempts = 0

    def publish(self, items: Sequence[RawItem]) -> None:
        self.attempts += 1
        if self.down:
            raise PublishError("broker unavailable")
        super().publish(items)


def feed_source(server: LocalServer, sid: str = "feed-a", path: str = "/feed",
                **kw: object) -> RssSource:
    return RssSource.model_validate({"id": sid, "type": "rss", "url": server.url(path),
                                     "name": sid, "lang": "en", "country": "GB", **kw})


def make_config(*sources: RssSource | TelegramSource, **defaults: object) -> FeedsConfig:
    base = {"min_interval_s": 0, "telegram_page_delay_s": 0, "interval_s": 900}
    return FeedsConfig(defaults=Defaults.model_validate({**base, **defaults}), sources=sources)


def poller(config: FeedsConfig, tmp_path: Path, publisher: ListPublisher, clock: Clock,
           **kw: object) -> Poller:
    return Poller(config, tmp_path / "state.sqlite", publisher, clock=clock,
                  rng=random.Random(7), **kw)  # type: ignore[arg-type]


TWO = [Entry(guid="a", title="Troops for Ukraine", link="https://n.example/a"),
       Entry(guid="b", title="ATACMS strikes", link="https://n.example/b")]


def test_new_items_are_published_once_also_across_a_restart(
    server: LocalServer, tmp_path: Path
) -> None:
    server.route("/feed", Reply(rss(TWO)))
    config = make_config(feed_source(server))
    published = ListPublisher()
    with poller(config, tmp_path, published, Clock()) as p:
        first = p.poll_once()
        again = p.poll_once(force=True)
    with poller(config, tmp_path, published, Clock()) as restarted:
        after_restart = restarted.poll_once(force=True)
    assert [i.title for i in published.items] == ["Troops for Ukraine", "ATACMS strikes"]
    assert first.new_items == 2 and again.new_items == 0 and after_restart.new_items == 0
    assert first.ok and first.results[0].status == "ok"
    assert all(not i.is_update for i in published.items)


def test_304_costs_no_parsing_and_publishes_nothing(server: LocalServer, tmp_path: Path) -> None:
    def conditional(request: Request) -> Reply:
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(status=304)
        return Reply(rss(TWO), headers={"ETag": '"v1"'})

    server.route("/feed", conditional)
    published = ListPublisher()
    with poller(make_config(feed_source(server)), tmp_path, published, Clock()) as p:
        p.poll_once()
        second = p.poll_once(force=True)
        health = p.state.health("feed-a")
    assert second.results[0].status == "not-modified" and second.ok
    assert server.requests[1].headers["if-none-match"] == '"v1"'
    assert len(published.items) == 2
    assert health.last_status == 304 and health.consecutive_failures == 0


def test_an_item_that_changed_is_published_as_an_update(server: LocalServer,
                                                         tmp_path: Path) -> None:
    server.route("/feed", Reply(rss(TWO)))
    published = ListPublisher()
    clock = Clock()
    with poller(make_config(feed_source(server)), tmp_path, published, clock) as p:
        p.poll_once()
        changed = [TWO[0], Entry(guid="b", title="ATACMS strikes: Kremlin responds",
                                 link="https://n.example/b")]
        server.route("/feed", Reply(rss(changed)))
        clock.advance(3600)
        report = p.poll_once()
    original, update = published.items[1], published.items[2]
    assert report.new_items == 0 and report.updated_items == 1
    assert update.is_update and update.item_id == original.item_id
    assert update.revision != original.revision
    assert update.first_seen_at == original.first_seen_at == START


def test_duplicate_entries_in_one_document_are_counted(server: LocalServer,
                                                       tmp_path: Path) -> None:
    server.route("/feed", Reply(rss([TWO[0], TWO[0], TWO[1]])))
    published = ListPublisher()
    with poller(make_config(feed_source(server)), tmp_path, published, Clock()) as p:
        report = p.poll_once()
        health = p.state.health("feed-a")
    assert len(published.items) == 2 and report.results[0].problems == 1
    assert health.parse_errors == 1


def test_a_bozo_feed_publishes_its_entries_and_counts_the_error(server: LocalServer,
                                                                tmp_path: Path) -> None:
    server.route("/feed", Reply(fixture("rss-bozo.xml")))
    published = ListPublisher()
    with poller(make_config(feed_source(server)), tmp_path, published, Clock()) as p:
        report = p.poll_once()
        health = p.state.health("feed-a")
    assert report.ok and len(published.items) >= 2
    assert health.parse_errors == 1 and health.last_success_at == START


def test_errors_back_off_exponentially_and_a_success_resets(server: LocalServer,
                                                            tmp_path: Path) -> None:
    server.route("/feed", Reply(b"oops", 500))
    clock = Clock()
    delays = []
    with poller(make_config(feed_source(server)), tmp_path, ListPublisher(), clock) as p:
        for _ in range(4):
            report = p.poll_once(force=True)
            due = p.state.health("feed-a").next_due_at
            assert due is not None
            delays.append((due - clock.now).total_seconds())
        assert not report.ok and report.results[0].error_kind == "http-500"
        for expected, delay in zip([900, 1800, 3600, 7200], delays, strict=True):
            assert expected <= delay <= expected * 1.1  # with at most 10 % jitter
        server.route("/feed", Reply(rss(TWO)))
        p.poll_once(force=True)
        health = p.state.health("feed-a")
    assert health.consecutive_failures == 0 and not health.disabled
    assert health.last_error_kind == "http-500"  # the last error stays visible


def test_backoff_is_capped(server: LocalServer, tmp_path: Path) -> None:
    server.route("/feed", Reply(b"oops", 503))
    clock = Clock()
    with poller(make_config(feed_source(server), max_backoff_s=3000), tmp_path, ListPublisher(),
                clock) as p:
        for _ in range(6):
            p.poll_once(force=True)
        due = p.state.health("feed-a").next_due_at
    assert due is not None and (due - clock.now).total_seconds() <= 3300


def test_retry_after_is_honoured(server: LocalServer, tmp_path: Path) -> None:
    server.route("/feed", Reply(b"slow down", 429, {"Retry-After": "7200"}))
    clock = Clock()
    with poller(make_config(feed_source(server)), tmp_path, ListPublisher(), clock) as p:
        report = p.poll_once()
        due = p.state.health("feed-a").next_due_at
        assert report.results[0].status == "throttled"
        assert due is not None and due >= clock.now + timedelta(seconds=7200)
        clock.advance(3600)
        assert p.poll_once().results == ()  # not due yet: the server is not asked again
    assert len(server.requests) == 1


def test_feed_ttl_lengthens_the_interval(server: LocalServer, tmp_path: Path) -> None:
    server.route("/feed", Reply(rss(TWO, ttl=120)))
    clock = Clock()
    config = make_config(feed_source(server), respect_ttl=True)
    with poller(config, tmp_path, ListPublisher(), clock) as p:
        p.poll_once()
        due = p.state.health("feed-a").next_due_at
    assert due is not None and due >= clock.now + timedelta(hours=2)


def test_only_due_sources_are_polled(server: LocalServer, tmp_path: Path) -> None:
    server.route("/a", Reply(rss(TWO)))
    server.route("/b", Reply(rss(TWO)))
    config = make_config(feed_source(server, "feed-a", "/a", interval_s=600),
                         feed_source(server, "feed-b", "/b", interval_s=3600))
    clock = Clock()
    with poller(config, tmp_path, ListPublisher(), clock) as p:
        p.poll_once()
        clock.advance(700)
        report = p.poll_once()
    assert [r.source_id for r in report.results] == ["feed-a"] and report.not_due == 1


def test_a_source_is_disabled_after_repeated_hard_failures(server: LocalServer,
                                                           tmp_path: Path) -> None:
    server.route("/gone", Reply(b"", 410))
    server.route("/ok", Reply(rss(TWO)))
    config = make_config(feed_source(server, "feed-gone", "/gone"),
                         feed_source(server, "feed-ok", "/ok"), disable_after=3)
    with poller(config, tmp_path, ListPublisher(), Clock()) as p:
        reports = [p.poll_once(force=True) for _ in range(4)]
    by_id = [{r.source_id: r for r in rep.results} for rep in reports]
    assert [b["feed-gone"].status for b in by_id] == ["error", "error", "disabled", "disabled"]
    assert by_id[3]["feed-ok"].status in ("ok", "not-modified")
    assert len(server.hits("/gone")) == 3  # a disabled source is not fetched any more
    assert not reports[3].ok and "feed-gone" in reports[3].summary()
    assert "disabled after 3 consecutive hard failures" in reports[3].summary()
    health = {h.id: h for h in source_health(config, tmp_path / "state.sqlite")}
    assert health["feed-gone"].state == "disabled" and health["feed-ok"].state == "ok"


def test_a_publish_failure_loses_nothing_and_duplicates_nothing(server: LocalServer,
                                                                tmp_path: Path) -> None:
    def conditional(request: Request) -> Reply:
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(status=304)
        return Reply(rss(TWO), headers={"ETag": '"v1"'})

    server.route("/a", conditional)
    server.route("/b", Reply(rss([Entry(guid="c", title="Third")])))
    config = make_config(feed_source(server, "feed-a", "/a"), feed_source(server, "feed-b", "/b"))
    publisher = FlakyPublisher()
    publisher.down = True
    clock = Clock()
    with poller(config, tmp_path, publisher, clock) as p:
        failed = p.poll_once()
        assert {r.status for r in failed.results} == {"publish-failed"}
        assert not failed.ok and "status: FAILED" in failed.summary()
        assert publisher.attempts == 1  # the second source did not wait out the same outage
        assert p.state.seen_count("feed-a") == 0 and p.state.cursor("feed-a") == Cursor()
        health = p.state.health("feed-a")
        assert health.consecutive_failures == 0 and health.last_error_kind == "publish"
        assert health.next_due_at is not None and health.next_due_at <= clock.now + timedelta(
            seconds=10)
        publisher.down = False
        clock.advance(10)
        recovered = p.poll_once()
        again = p.poll_once(force=True)
    assert recovered.ok and recovered.new_items == 3 and again.new_items == 0
    assert sorted(i.title for i in publisher.items) == ["ATACMS strikes", "Third",
                                                        "Troops for Ukraine"]
    assert "if-none-match" not in server.hits("/a")[1].headers  # the cursor had not moved


def test_the_archive_holds_every_published_item(server: LocalServer, tmp_path: Path) -> None:
    server.route("/feed", Reply(rss(TWO)))
    archive = tmp_path / "archive" / "raw.jsonl"
    published = ListPublisher()
    with poller(make_config(feed_source(server)), tmp_path, published, Clock(),
                archive_path=archive) as p:
        p.poll_once()
        p.poll_once(force=True)
    assert read_archive(archive) == published.items
    assert len(archive.read_text().splitlines()) == 2


def test_nothing_is_archived_when_the_publish_failed(server: LocalServer, tmp_path: Path) -> None:
    server.route("/feed", Reply(rss(TWO)))
    archive = tmp_path / "raw.jsonl"
    publisher = FlakyPublisher()
    publisher.down = True
    with poller(make_config(feed_source(server)), tmp_path, publisher, Clock(),
                archive_path=archive) as p:
        p.poll_once()
    assert not archive.exists() or archive.read_text() == ""


def article_feed(server: LocalServer) -> bytes:
    return rss([Entry(guid="art-1", title="Truppen für die Ukraine",
                      link=server.url("/artikel/truppen"),
                      description="London und Paris reaktivieren Gespräche.")])


def test_full_text_replaces_the_summary_for_new_items(server: LocalServer,
                                                      tmp_path: Path) -> None:
    server.route("/feed", Reply(article_feed(server)))
    server.route("/artikel/truppen", Reply(fixture("article-seed.html"),
                                           headers={"Content-Type": "text/html; charset=utf-8"}))
    published = ListPublisher()
    config = make_config(feed_source(server, full_text=True))
    with poller(config, tmp_path, published, Clock(), allow_private=True) as p:
        p.poll_once()
        p.poll_once(force=True)
    (item,) = published.items
    assert "ukrainische Militäranlage in Dnipropetrowsk." in item.content
    assert "Newsletter" not in item.content and "Spende" not in item.content
    assert item.summary == "London und Paris reaktivieren Gespräche."
    assert len(server.hits("/artikel/truppen")) == 1  # not fetched again for a repeat


def test_article_links_to_private_addresses_are_not_fetched(server: LocalServer,
                                                            tmp_path: Path) -> None:
    server.route("/feed", Reply(article_feed(server)))
    server.route("/artikel/truppen", Reply(fixture("article-seed.html")))
    published = ListPublisher()
    config = make_config(feed_source(server, full_text=True))
    with poller(config, tmp_path, published, Clock()) as p:  # allow_private=False
        report = p.poll_once()
        health = p.state.health("feed-a")
    assert server.hits("/artikel/truppen") == []
    (item,) = published.items  # still published, with the feed's summary
    assert item.content == "" and item.summary == "London und Paris reaktivieren Gespräche."
    assert report.ok and report.results[0].problems == 1 and health.parse_errors == 1


def test_a_connector_bug_does_not_stop_the_other_sources(server: LocalServer,
                                                         tmp_path: Path) -> None:
    server.route("/a", Reply(rss(TWO)))
    server.route("/b", Reply(rss(TWO)))
    config = make_config(feed_source(server, "feed-a", "/a"), feed_source(server, "feed-b", "/b"))
    with poller(config, tmp_path, ListPublisher(), Clock()) as p:

        def broken(cursor: Cursor) -> PollResult:
            raise RuntimeError("bug")

        p.connectors["feed-a"].poll = broken  # type: ignore[method-assign]
        report = p.poll_once()
    results = {r.source_id: r for r in report.results}
    assert results["feed-a"].error_kind == "internal" and results["feed-b"].status == "ok"


def test_run_forever_stops_when_asked(server: LocalServer, tmp_path: Path) -> None:
    server.route("/feed", Reply(rss(TWO)))
    published = ListPublisher()
    stop = threading.Event()
    with Poller(make_config(feed_source(server)), tmp_path / "s.sqlite", published) as p:
        thread = threading.Thread(target=p.run_forever, args=(stop,))
        thread.start()
        for _ in range(100):
            if published.items:
                break
            threading.Event().wait(0.05)
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(published.items) == 2


def test_telegram_channels_publish_only_new_posts(server: LocalServer, tmp_path: Path) -> None:
    pages = channel_pages("defence_watch", range(101, 106))

    def handler(request: Request) -> Reply:
        key = f"?before={request.query['before']}" if "before" in request.query else ""
        return Reply(pages.get(key, page("defence_watch", [])))

    server.route("/s/defence_watch", handler)
    tg = TelegramSource(id="tg-defence-watch", type="telegram", channel="defence_watch",
                        base_url=server.url(""), name="Defence Watch", lang="en", country="GB")
    published = ListPublisher()
    with poller(make_config(tg), tmp_path, published, Clock()) as p:
        p.poll_once()
        pages = channel_pages("defence_watch", range(101, 118))  # 12 new posts since
        second = p.poll_once(force=True)
        cursor = p.state.cursor("tg-defence-watch")
    titles = [i.title for i in published.items]
    assert titles == [f"Post {n}" for n in range(101, 118)]
    assert second.new_items == 12 and cursor.last_message_id == 117


def test_health_table_and_json(server: LocalServer, tmp_path: Path) -> None:
    server.route("/feed", Reply(rss(TWO)))
    tg = TelegramSource(id="tg-never", type="telegram", channel="never_polled",
                        name="Never", lang="uk", country="UA", enabled=False)
    config = make_config(feed_source(server), tg)
    with poller(config, tmp_path, ListPublisher(), Clock()) as p:
        p.poll_once()
    health = source_health(config, tmp_path / "state.sqlite")
    table = render.health_table(health, now=START + timedelta(minutes=5))
    assert "feed-a" in table and "tg-never" in table and "5m ago" in table
    data = json.loads(render.health_json(health))
    assert [(d["id"], d["type"], d["lang"], d["country"], d["state"]) for d in data] == [
        ("feed-a", "rss", "en", "GB", "ok"), ("tg-never", "telegram", "uk", "UA", "off")]
    assert data[0]["items_seen"] == 2 and data[0]["last_status"] == 200
    assert data[0]["last_success_at"] == "2024-11-25T12:00:00Z"


def test_health_of_an_unpolled_config_creates_no_state(tmp_path: Path) -> None:
    tg = TelegramSource(id="tg-x", type="telegram", channel="some_channel", name="X",
                        lang="ru", country="RU")
    (h,) = source_health(make_config(tg), tmp_path / "none.sqlite")
    assert h.state == "never-polled" and not (tmp_path / "none.sqlite").exists()


def test_the_summary_fits_one_screen() -> None:
    results = tuple(
        SourceResult(source_id=f"feed-{n}", type="rss", status="error", error_kind="timeout",
                     error="x" * 300)
        for n in range(100)
    )
    report = PollReport(started_at=START, finished_at=START, results=results)
    lines = report.summary().splitlines()
    assert len(lines) <= 20 and all(len(line) <= 130 for line in lines)
    assert "and 85 more" in report.summary() and not report.ok


def test_state_is_shared_by_path(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.sqlite"):
        pass
    # The poller opens the same file: `newsmon sources` reads what `newsmon poll` wrote.
    with Poller(make_config(), tmp_path / "state.sqlite", ListPublisher()) as p:
        assert p.poll_once().results == ()


@pytest.mark.parametrize("status", ["ok", "not-modified", "throttled"])
def test_report_is_ok_unless_something_failed(status: str) -> None:
    result = SourceResult(source_id="a", type="rss", status=status)  # type: ignore[arg-type]
    assert PollReport(started_at=START, finished_at=START, results=(result,)).ok


def test_the_same_document_again_costs_no_parse_without_validators(server: LocalServer,
                                                                   tmp_path: Path) -> None:
    server.route("/feed", Reply(rss(TWO)))  # no ETag, no Last-Modified
    with poller(make_config(feed_source(server)), tmp_path, ListPublisher(), Clock()) as p:
        p.poll_once()
        again = p.poll_once(force=True)
    assert again.results[0].status == "not-modified" and again.results[0].http_status == 200


def test_an_archive_that_cannot_be_written_is_a_publish_failure(server: LocalServer,
                                                                 tmp_path: Path) -> None:
    server.route("/feed", Reply(rss(TWO)))
    archive = tmp_path / "archive.jsonl"
    archive.mkdir()  # a directory where the file should be: appending fails
    with poller(make_config(feed_source(server)), tmp_path, ListPublisher(), Clock(),
                archive_path=archive) as p:
        report = p.poll_once()
        assert report.results[0].status == "publish-failed"
        assert p.state.seen_count("feed-a") == 0


def test_dedup_forgets_items_long_gone_from_the_feed(server: LocalServer, tmp_path: Path) -> None:
    server.route("/feed", Reply(rss(TWO)))
    clock = Clock()
    with poller(make_config(feed_source(server), seen_retention_days=30), tmp_path,
                ListPublisher(), clock) as p:
        p.poll_once()
        server.route("/feed", Reply(rss(TWO[1:])))  # "a" leaves the feed
        clock.advance(3600)
        p.poll_once()
        clock.advance(31 * 86400)
        p.poll_once()  # prunes (once a day) before polling
        assert p.state.seen_count("feed-a") == 1
