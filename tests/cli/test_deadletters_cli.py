"""`newsmon deadletters` on the embedded store: a multi-line error keeps the table one line per
letter; `deadletters discard ID --reason` takes a letter out of listing and replay, recorded
(`--discarded` lists it)."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.models import DeadLetter
from newsmon.pipeline.store import SqliteStore


def test_list_discard_and_list_again(tmp_path: Path) -> None:
    config = tmp_path / "newsmon.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"),
                                      "search": {"backend": "embedded"}}))
    (tmp_path / "state").mkdir()
    junk = DeadLetter.make(stage="decode", source_id="junk-feed", payload="\x00\x01",
                           error="Traceback (most recent call last):\n  File x\nValueError: x")
    fine = DeadLetter.make(stage="normalize", source_id="wire", payload="{}",
                           error="ValueError: no title")
    store = SqliteStore(tmp_path / "state" / "documents.sqlite")
    store.setup()
    store.bulk_write("dead-letters", [(d.dl_id, d.document()) for d in (junk, fine)])
    store.close()
    runner = CliRunner()

    def newsmon(*args: str, code: int = 0) -> tuple[str, str]:
        result = runner.invoke(app, [*args, "--config", str(config)])
        assert result.exit_code == code, result.output
        return result.stdout, result.stderr

    out, err = newsmon("deadletters")
    rows = out.splitlines()
    assert len(rows) == 2 and "2 dead letters pending" in err
    assert {row.split()[0] for row in rows} == {junk.dl_id[:12], fine.dl_id[:12]}
    assert any(row.endswith("Traceback (most recent call last):…") for row in rows)

    out, _ = newsmon("deadletters", "discard", junk.dl_id[:12], "--reason",
                     "binary junk, the feed is gone")
    assert out.strip() == f"{junk.dl_id} discarded (decode, junk-feed)"
    out, err = newsmon("deadletters")
    assert [row.split()[0] for row in out.splitlines()] == [fine.dl_id[:12]]
    assert "1 dead letters pending" in err
    out, err = newsmon("deadletters", "--discarded")
    assert out.startswith(junk.dl_id[:12]) and "binary junk, the feed is gone" in out
    assert "1 dead letters discarded" in err

    # Discarding again, or an id that is not there: one line, exit 2.
    _, err = newsmon("deadletters", "discard", junk.dl_id, code=2)
    assert err.strip() == (f"no pending dead letter with id {junk.dl_id!r} "
                           "(see `newsmon deadletters`)")
