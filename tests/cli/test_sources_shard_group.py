"""`newsmon sources` with a shard group: each member's state store holds the health of its own
shards only (and a former owner its last report); the command shows each source once, from
the latest report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.connectors.records import Health
from newsmon.connectors.state import StateStore
from tests.connectors.feeds import embedded_config

T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _config(tmp_path: Path) -> Path:
    return embedded_config(tmp_path, {"sources": [
        {"id": f"feed-{i}", "type": "rss", "url": f"https://site{i}.example/feed.xml",
         "name": f"Feed {i}", "lang": "en", "country": "GB"} for i in range(1, 5)]})


def _report(path: Path, *rows: Health) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with StateStore(path) as state:
        for row in rows:
            state.save_health(row)


def _ok(source_id: str, at: datetime, items: int) -> Health:
    return Health(source_id=source_id, last_poll_at=at, last_success_at=at, items_seen=items)


def _failing(source_id: str, at: datetime) -> Health:
    return Health(source_id=source_id, last_poll_at=at, last_error="HTTP 503",
                  last_error_at=at, consecutive_failures=2)


def test_sources_merges_the_members_health_latest_report_winning(tmp_path: Path) -> None:
    config = _config(tmp_path)
    state = tmp_path / "state"
    # Member a held feed-2's shard and saw it failing; the shard moved to b, which has
    # polled it since. feed-1 only a has polled, feed-3 only b; feed-4 nobody.
    _report(state / "connectors.g.a.sqlite", _ok("feed-1", T0, 5), _failing("feed-2", T0))
    _report(state / "connectors.g.b.sqlite", _ok("feed-2", T0 + timedelta(minutes=5), 7),
            _ok("feed-3", T0, 3))

    shown = CliRunner().invoke(app, ["sources", "--json", "--config", str(config)])
    rows = json.loads(shown.stdout)
    assert [(r["id"], r["state"], r["items_seen"]) for r in rows] == [
        ("feed-1", "ok", 5), ("feed-2", "ok", 7), ("feed-3", "ok", 3),
        ("feed-4", "never-polled", 0)]
    assert shown.exit_code == 0, shown.output  # no enabled source failing

    # The former owner's later report wins back (a shard moves back, or b has not polled it
    # since), and the table shows each source once.
    _report(state / "connectors.g.a.sqlite", _failing("feed-2", T0 + timedelta(minutes=9)))
    table = CliRunner().invoke(app, ["sources", "--config", str(config)])
    assert table.exit_code == 3, table.output  # some enabled source failing
    assert sum("feed-2" in line for line in table.stdout.splitlines()) == 1
    rows = json.loads(CliRunner().invoke(
        app, ["sources", "--json", "--config", str(config)]).stdout)
    assert {r["id"]: r["state"] for r in rows}["feed-2"] == "failing"


def test_enable_reaches_the_member_that_disabled_the_source(tmp_path: Path) -> None:
    config = _config(tmp_path)
    member = tmp_path / "state" / "connectors.g.a.sqlite"
    _report(member, Health(source_id="feed-1", last_poll_at=T0, consecutive_failures=3,
                           hard_failures=3, disabled=True, disabled_reason="HTTP 404"))
    runner = CliRunner()
    enabled = runner.invoke(app, ["sources", "enable", "feed-1", "--config", str(config)])
    assert enabled.exit_code == 0, enabled.output
    assert "feed-1 enabled" in enabled.stdout
    with StateStore(member) as state:
        assert not state.health("feed-1").disabled
    again = runner.invoke(app, ["sources", "enable", "feed-1", "--config", str(config)])
    assert "feed-1 is not disabled (3 consecutive failures)" in again.stdout
