"""Feedback through to measurement on the real Elasticsearch: labels set by the inbox's own
action code, `newsmon feedback export`, `newsmon eval --feedback` (store and file), `newsmon
eval` on the export, and the report's live precision section."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from newsmon.cli import app
from newsmon.pipeline.store import DocumentStore
from newsmon.serve.feedback import Request, record_action
from tests.serve.conftest import NOW
from tests.serve.seed import seed

ROOT = Path(__file__).resolve().parents[2]


def newsmon(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_labels_become_an_eval_set_and_live_precision(es_store: DocumentStore,
                                                      tmp_path: Path) -> None:
    ids = seed(es_store, NOW)
    record_action(es_store, ids["a"], Request("confirm", by="alice"), NOW)
    record_action(es_store, ids["b"], Request("false_positive", by="bob",
                                              reason="an exercise, not a deployment"), NOW)
    record_action(es_store, ids["c"], Request("acknowledge", by="bob"), NOW)  # not a label
    settings = getattr(es_store, "settings", None)
    assert settings is not None
    config = tmp_path / "newsmon.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"), "topics": str(ROOT / "config/topics.yaml"),
        "search": {"backend": "elasticsearch", "url": settings.url,
                   "index_prefix": settings.index_prefix}}))

    out = tmp_path / "feedback.jsonl"
    newsmon("feedback", "export", "--config", str(config), "--out", str(out))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    by_id = {r["id"]: r for r in records}
    assert set(by_id) == {ids["a"], ids["b"]}
    assert by_id[ids["a"]]["labels"] == ["long_range_strike"]
    assert by_id[ids["a"]]["text"].startswith("Body of article 1")  # the stored article
    assert by_id[ids["b"]]["labels"] == [] and by_id[ids["b"]]["hard_negative"] is True
    assert by_id[ids["b"]]["reason"] == "an exercise, not a deployment"

    from_store = json.loads(newsmon("eval", "--feedback", "--json", "--config", str(config)))
    assert from_store["overall"] == {"confirmed": 1, "false_positive": 1, "labelled": 2,
                                     "precision": 0.5}
    assert from_store["rule"]["strikes"]["precision"] == 1.0
    assert from_store["rule"]["troops"]["precision"] == 0.0
    assert from_store["language"]["de"] == {"confirmed": 1, "false_positive": 0,
                                            "labelled": 1, "precision": 1.0}
    assert from_store["source_label"]["unlabelled"]["labelled"] == 2
    from_file = json.loads(newsmon("eval", "--feedback", str(out), "--json"))
    assert from_file["overall"] == from_store["overall"]
    text = newsmon("eval", "--feedback", str(out))
    assert "live precision:  50.0%  (1 confirmed, 1 false positive)" in text

    # the export is an eval set: the rules run over it
    assert "long_range_strike" in newsmon("eval", str(out), "--config", str(config))

    page = tmp_path / "report.html"
    newsmon("report", "--config", str(config), "--since", "30d", "--out", str(page))
    html = page.read_text()
    assert "Live precision (alerts labelled in the inbox)" in html
    assert "<td>rule</td><td>troops</td><td>0%</td><td>0</td><td>1</td>" in html
