"""What a poll cannot turn into items is parked as a dead letter: a failed fetch or document,
an entry that had to be dropped. One letter per failure, however often it recurs; copied to
the search store's dead-letter index, listed by `newsmon deadletters`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.config import load_settings
from newsmon.connectors.publisher import ListPublisher
from newsmon.connectors.runner import Poller
from newsmon.connectors.state import StateStore
from newsmon.metrics import REGISTRY
from newsmon.ops.orchestrate import publish_poll_dead_letters
from newsmon.pipeline.store import StoreUnavailable
from tests.connectors.feeds import Entry, embedded_config, rss
from tests.connectors.server import LocalServer, Reply
from tests.connectors.test_runner import Clock, feed_source, make_config, poller

ROOT = Path(__file__).resolve().parents[2]
RSS = {"Content-Type": "application/rss+xml"}


def parked_count() -> float:
    value = REGISTRY.get_sample_value("newsmon_connector_dead_letters_total", {"type": "rss"})
    return value or 0.0


def test_failed_fetches_and_dropped_entries_become_dead_letters_once(
        server: LocalServer, tmp_path: Path) -> None:
    server.route("/gone", Reply(b"no such feed", 404))
    server.route("/html", Reply(b"<html><body>Not a feed</body></html>",
                                headers={"Content-Type": "text/html"}))
    server.route("/ok", Reply(rss([Entry(guid="a", title="Troops", link="https://n.example/a"),
                                   Entry(guid="b", title="")]), headers=RSS))
    config = make_config(feed_source(server, "gone", "/gone"), feed_source(server, "html", "/html"),
                         feed_source(server, "ok", "/ok"))
    clock = Clock()
    publisher = ListPublisher()
    counted_before = parked_count()
    with poller(config, tmp_path, publisher, clock) as p:
        p.poll_once()
        clock.advance(7200)
        p.poll_once(force=True)  # the same failures again
        letters = p.state.dead_letters()
    assert len(publisher.items) == 1  # the readable entry went out
    assert parked_count() - counted_before == 3  # new letters only: the second poll adds none
    by_source = {(dl.source_id, json.loads(dl.payload)["kind"]): dl for dl in letters}
    assert set(by_source) == {("gone", "http-404"), ("html", "not-a-feed"),
                              ("ok", "empty-entry")}, by_source
    assert all(dl.stage == "poll" for dl in letters)
    gone = by_source[("gone", "http-404")]
    assert gone.error.startswith("http-404: HTTP 404")
    assert json.loads(gone.payload)["source"] == server.url("/gone")


def test_run_parks_them_in_the_dead_letter_index_and_deadletters_lists_them(
        server: LocalServer, tmp_path: Path) -> None:
    server.route("/gone", Reply(b"no such feed", 404))
    config = embedded_config(tmp_path, {"sources": [{
        "id": "gone-feed", "type": "rss", "url": server.url("/gone"), "name": "Gone",
        "lang": "en", "country": "GB"}]})
    runner = CliRunner()
    # 3: the run went through, the source failed (README, "Exit codes")
    assert runner.invoke(app, ["run", "--config", str(config)]).exit_code == 3
    listed = runner.invoke(app, ["deadletters", "--json", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    letters = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(dl["stage"], dl["source_id"]) for dl in letters] == [("poll", "gone-feed")]
    assert "1 dead letters pending" in listed.stderr

    replayed = runner.invoke(app, ["deadletters", "--replay", "--config", str(config)])
    assert replayed.exit_code == 0, replayed.output
    assert "1 poll dead letters marked handled" in replayed.stderr
    assert "0 still pending" in replayed.stdout


class DownStore:
    def bulk_write(self, kind: str, docs: object) -> list[object]:
        raise StoreUnavailable("elasticsearch at http://127.0.0.1:9: connection refused")


def test_a_search_outage_keeps_them_for_the_next_pass(server: LocalServer,
                                                      tmp_path: Path) -> None:
    server.route("/gone", Reply(b"no such feed", 404))
    config = tmp_path / "newsmon.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state")}))
    settings = load_settings(config, environ={})
    with Poller(make_config(feed_source(server, "gone", "/gone")),
                settings.state_dir / "connectors.sqlite", ListPublisher()) as p:
        p.poll_once()
    publish_poll_dead_letters(settings, DownStore())  # no exception: the poll is not failed
    with StateStore(settings.state_dir / "connectors.sqlite") as state:
        assert len(state.dead_letters(unpublished_only=True)) == 1


def test_a_shard_group_members_letters_are_published_too(server: LocalServer,
                                                         tmp_path: Path) -> None:
    """A member of a shard group keeps its dead letters in its own state store
    (connectors.<group>.<member>.sqlite); the copy to the search store reads every one."""
    from newsmon.pipeline import deadletters
    from newsmon.pipeline.store import open_store

    server.route("/gone", Reply(b"no such feed", 404))
    config = tmp_path / "newsmon.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state")}))
    settings = load_settings(config, environ={})
    member = settings.state_dir / "connectors.pollers.host-a-1.sqlite"
    settings.state_dir.mkdir(parents=True)
    with Poller(make_config(feed_source(server, "gone", "/gone")), member,
                ListPublisher()) as p:
        p.poll_once()
    store = open_store(settings.search, settings.state_dir)
    try:
        publish_poll_dead_letters(settings, store)
        assert [(dl.stage, dl.source_id) for dl in deadletters.pending(store)] == [
            ("poll", "gone")]
    finally:
        store.close()
    with StateStore(member) as state:
        assert state.dead_letters(unpublished_only=True) == []
