"""The operator's commands on the embedded default, after a demo run: `alerts test` (dry run),
`alerts surge`, `alerts deliver`, `alerts list`, `report`, `sources --publish`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.pipeline.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo run (shipped demo feeds -> embedded store) with a surge rule added."""
    tmp = tmp_path_factory.mktemp("demo")
    (tmp / "alerts.yaml").write_text(yaml.safe_dump({
        # The demo's fixed dates, read without --demo: no age limit, or they would not alert.
        "max_article_age_s": 0,
        "channels": {"console": {"type": "console"}},
        "rules": [{"name": "long-range-strike", "topic": "long_range_strike"},
                  {"name": "troop-deployment", "topic": "troop_deployment"}],
        "surges": [{"name": "lrs-surge", "topic": "long_range_strike", "interval_s": 10800,
                    "baseline_intervals": 8, "min_count": 2,
                    # the demo is the index's only history
                    "min_history_intervals": 0}],
    }))
    config = tmp / "newsmon.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp / "state"), "feeds": str(ROOT / "config/demo/feeds.yaml"),
        "topics": str(ROOT / "config/topics.yaml"), "alerts": "alerts.yaml",
        "search": {"backend": "embedded"}}))
    result = CliRunner().invoke(app, ["run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    # 5 story alerts, and the surge of 06:00-09:00 that the run's surge window judged
    assert "10 articles, 6 alerts" in result.output
    return config


def newsmon(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_dry_run_of_a_story_rule_lists_what_would_alert(demo: Path) -> None:
    out = newsmon("alerts", "test", "--rule", "long-range-strike", "--since", "7d",
                  "--until", "2026-11-21T00:00:00", "--config", str(demo))
    assert "3 alerts from 2026-11-14 00:00 UTC; dry run, nothing sent" in out
    assert "ATACMS" in out and "Storm Shadow" in out
    store = SqliteStore(demo.parent / "state" / "documents.sqlite")
    assert store.count("alerts") == 6  # nothing written


def test_dry_run_of_a_surge_rule_shows_the_intervals(demo: Path) -> None:
    out = newsmon("alerts", "test", "--rule", "lrs-surge", "--since", "1d",
                  "--until", "2026-11-20T12:00:00", "--config", str(demo))
    # 07:12 and 08:33 fall in 06:00-09:00 against an empty baseline: a surge of 2
    assert "2026-11-20 06:00  SURGE      2 articles" in out
    assert "1 surge intervals" in out


def test_unknown_rule_is_a_usage_error(demo: Path) -> None:
    result = CliRunner().invoke(app, ["alerts", "test", "--rule", "nope", "--config",
                                      str(demo)])
    assert result.exit_code == 2 and "rules: long-range-strike" in result.output


def test_surge_command_finds_the_alert_the_run_raised_and_sends_it_once(demo: Path) -> None:
    args = ("alerts", "surge", "--at", "2026-11-20T08:59:00", "--config", str(demo))
    first = newsmon(*args)
    assert "lrs-surge: 2 articles from 2026-11-20 06:00 UTC" in first
    # The run's window raised and delivered it: same interval, same alert, nothing to send.
    assert "console: sent" not in first
    assert "console: sent" not in newsmon(*args)
    store = SqliteStore(demo.parent / "state" / "documents.sqlite")
    surges = [d for d in store.all_docs("alerts") if d.get("kind") == "surge"]
    assert len(surges) == 1 and surges[0]["notified"] == ["console"]
    listed = newsmon("alerts", "list", "--since", "3650d", "--config", str(demo))
    assert "surge" in listed and "6 alerts" in listed


def test_deliver_has_nothing_left_after_the_run(demo: Path) -> None:
    assert "0 delivery attempts" in newsmon("alerts", "deliver", "--config", str(demo))


def test_report_and_source_health_from_the_embedded_store(demo: Path, tmp_path: Path) -> None:
    newsmon("sources", "--publish", "--config", str(demo))
    out = tmp_path / "report.html"
    summary = newsmon("report", "--since", "7d", "--until", "2026-11-21T00:00:00", "--out",
                      str(out), "--config", str(demo))
    assert "10 articles" in summary and "3 sources ok" in summary
    page = out.read_text()
    assert "Demo World Wire" in page and "Macron n&#x27;exclut pas" in page
