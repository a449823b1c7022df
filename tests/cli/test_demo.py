"""`newsmon run --demo` then `newsmon report` with no flags (issue 18): the demo tells what to
run next, the report finds the demo's store, and the demo items' dates are moved to the day
the demo runs, so the default `--since 7d` shows them (they were 14 days old)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.config import shipped_config_dir
from newsmon.ops.orchestrate import _feed_dates, prepare_demo, shift_feed_dates

pytestmark = pytest.mark.usefixtures("no_newsmon_environment")


def test_demo_then_report_without_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    ran = runner.invoke(app, ["run", "--demo"])
    assert ran.exit_code == 0, ran.output
    assert "holds 10 articles, 5 alerts" in ran.stdout
    steps = ran.stdout.split("next:\n", 1)[1].splitlines()
    assert steps[0].split("#")[0].strip() == "newsmon report"

    reported = runner.invoke(app, ["report"])
    assert reported.exit_code == 0, reported.output
    assert reported.stdout.startswith("report.html: 10 articles, ")
    assert "5 alerts" in reported.stdout
    assert "reading the demo's store" in reported.stderr
    assert (tmp_path / "report.html").is_file()


def test_demo_dates_move_by_whole_days_to_the_day_before_now(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.chdir(tmp_path)
    now = datetime(2027, 3, 9, 7, 0, tzinfo=UTC)
    config = prepare_demo(shipped_config_dir() / "demo", now)
    shipped = [_feed_dates(p.read_text(encoding="utf-8"))
               for p in sorted((shipped_config_dir() / "demo" / "feeds").glob("*.xml"))]
    moved = [_feed_dates(p.read_text(encoding="utf-8"))
             for p in sorted((config.parent / "feeds").glob("*.xml"))]
    shifts = {b - a for old, new in zip(shipped, moved, strict=True)
              for a, b in zip(old, new, strict=True)}
    assert len(shifts) == 1 and next(iter(shifts)) % timedelta(days=1) == timedelta(0)
    newest = max(d for dates in moved for d in dates)
    assert now - timedelta(days=1) < newest <= now
    assert all(d > now - timedelta(hours=48) for dates in moved for d in dates)


def test_shift_keeps_formats_and_offsets() -> None:
    xml = ("<pubDate>Fri, 20 Nov 2026 06:45:00 +0100</pubDate>"
           "<updated>2026-11-20T09:00:00Z</updated>")
    out = shift_feed_dates(xml, timedelta(days=3))
    assert "<updated>2026-11-23T09:00:00Z</updated>" in out
    rss = out.split("<pubDate>")[1].split("</pubDate>")[0]
    assert rss.endswith("+0100") and parsedate_to_datetime(rss) == datetime(
        2026, 11, 23, 5, 45, tzinfo=UTC)
