"""The inbox's logic without a browser: actions on an alert document, mutes, credentials,
live precision and the export record; the label filter on an alert that carries labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from newsmon.models import SourceKind, SourceRef
from newsmon.pipeline.alerts import rules as alerting
from newsmon.pipeline.alerts.mutes import Mute, is_muted, keys_for, mutes_on
from newsmon.pipeline.store import SqliteStore
from newsmon.serve.app import create_app
from newsmon.serve.auth import AuthConfigError, Credentials, hash_password, verify_password
from newsmon.serve.feedback import ActionError, Request, apply_action, status_of
from newsmon.serve.measure import export_record, live_precision, source_labels
from tests.serve import seed

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ALERT = {"alert_id": "a1", "rule": "strikes", "topic": "long_range_strike", "story_id": "s1",
         "source_ids": ["src-a", "src-b"], "languages": ["de", "en"], "title": "T",
         "url": "https://x.example/1", "snippets": ["… one …", "… one …", "… two …"],
         "doc_ids": ["d1"], "kind": "story", "created_at": NOW.isoformat(),
         "updated_at": NOW.isoformat(), "score": 2.0}


def act(doc: dict[str, object], action: str, **kw: object) -> dict[str, object]:
    return apply_action(doc, Request(action=action, by="alice", **kw), NOW)  # type: ignore[arg-type]


def test_labels_last_one_wins_acknowledge_never_overwrites_and_history_keeps_all() -> None:
    doc = act(dict(ALERT), "acknowledge")
    assert status_of(doc) == "acknowledged"
    doc = act(doc, "confirm")
    doc = act(doc, "false_positive", reason="  a grain\ndeal  ")
    doc = act(doc, "acknowledge")
    fb = doc["feedback"]
    assert isinstance(fb, dict)
    assert (fb["status"], fb["reason"], fb["by"]) == ("false_positive", "a grain deal", "alice")
    assert [h["action"] for h in fb["history"]] == [
        "acknowledge", "confirm", "false_positive", "acknowledge"]
    assert "feedback" not in ALERT  # pure


@pytest.mark.parametrize(("action", "kw", "message"), [
    ("delete", {}, "unknown action"),
    ("false_positive", {"reason": "  "}, "needs a reason"),
    ("mute_source", {"source_id": "src-z", "hours": 2}, "not a source of this alert"),
    ("mute_source", {"source_id": "src-a"}, "needs a number of hours"),
    ("mute_source", {"source_id": "src-a", "hours": 0.5}, "between 1 and"),
])
def test_bad_actions_are_refused_with_the_reason(action: str, kw: dict[str, object],
                                                 message: str) -> None:
    with pytest.raises(ActionError, match=message):
        act(dict(ALERT), action, **kw)


def test_a_muted_story_or_every_source_muted_silences_an_alert() -> None:
    doc = act(dict(ALERT), "mute_source", source_id="src-a", hours=2)
    assert doc["muted_keys"] == ["source:src-a"]
    mutes = mutes_on(doc)
    # one of two sources muted: the story is corroborated elsewhere, it still notifies
    assert is_muted(ALERT, mutes, NOW) is None
    doc = act(doc, "mute_source", source_id="src-b", hours=5)
    found = is_muted(ALERT, mutes_on(doc), NOW + timedelta(hours=1))
    assert found is not None and found.target == "src-a"  # the one that ends first
    assert is_muted(ALERT, mutes_on(doc), NOW + timedelta(hours=3)) is None  # src-a ran out
    story = act(dict(ALERT), "mute_story")
    assert is_muted({**ALERT, "source_ids": ["other"]}, mutes_on(story), NOW) is not None
    assert is_muted({**ALERT, "story_id": "s2"}, mutes_on(story), NOW) is None
    assert keys_for(ALERT) == ["story:s1", "source:src-a", "source:src-b"]
    assert is_muted(ALERT, [Mute("story", "s1", NOW)], NOW) is None  # ends at now: over


def test_credentials_from_the_environment() -> None:
    encoded = hash_password("pw", iterations=1000)
    assert verify_password("pw", encoded) and not verify_password("pW", encoded)
    assert not verify_password("pw", "garbage")
    creds = Credentials.from_env({"NEWSMON_INBOX_USERS": f"alice:{encoded}",
                                  "NEWSMON_INBOX_API_KEYS": "bot:k1, ci:k2"})
    assert creds.login("alice", "pw") and not creds.login("bob", "pw")
    assert creds.api_user("Bearer k2") == "ci" and creds.api_user("Bearer k3") is None
    assert creds.api_user("k1") is None
    with pytest.raises(AuthConfigError, match="no users or API keys"):
        Credentials.from_env({})
    with pytest.raises(AuthConfigError, match="not a hash"):
        Credentials.from_env({"NEWSMON_INBOX_USERS": "alice:plaintext"})


def test_live_precision_per_rule_language_and_source_label() -> None:
    labelled = [
        act({**ALERT, "source_kinds": ["state media"]}, "confirm"),
        act({**ALERT, "rule": "troops", "languages": ["en"]}, "false_positive", reason="r"),
        act({**ALERT, "languages": ["en"]}, "confirm"),
        act(dict(ALERT), "acknowledge"),  # not a label: not counted
    ]
    result = live_precision(labelled).to_json()
    assert result["overall"] == {"confirmed": 2, "false_positive": 1, "labelled": 3,
                                 "precision": 0.6667}
    assert result["rule"]["strikes"]["precision"] == 1.0
    assert result["rule"]["troops"]["precision"] == 0.0
    assert result["language"]["de"]["labelled"] == 1 and result["language"]["en"]["labelled"] == 3
    assert result["source_label"]["state media"]["confirmed"] == 1
    assert result["source_label"]["unlabelled"]["false_positive"] == 1
    # an exported record counts the same
    exported = [export_record(a, None) for a in labelled[:3]]
    assert live_precision(exported).to_json()["overall"] == result["overall"]


def test_export_record_has_the_eval_fields() -> None:
    fp = act(dict(ALERT), "false_positive", reason="not about strikes")
    rec = export_record(fp, {"doc_id": "d1", "text": "full text", "lang": "de"})
    assert {"id", "lang", "url", "title", "text", "labels", "hard_negative", "reason"} <= set(rec)
    assert (rec["labels"], rec["hard_negative"], rec["text"], rec["lang"]) == (
        [], True, "full text", "de")
    ok = export_record(act(dict(ALERT), "confirm"), None)
    assert ok["labels"] == ["long_range_strike"] and not ok["hard_negative"]
    assert ok["text"] == "… one …\n… two …"  # the article gone: the distinct snippets


def test_source_labels_from_source_kinds_or_sources() -> None:
    assert source_labels({"source_kinds": ["wire"]}) == ["wire"]
    assert source_labels({"source_kinds": ["wire", "blog", "wire"]}) == ["blog", "wire"]
    assert source_labels({"sources": [{"id": "a", "kind": "blog"}, {"id": "b"}]}) == ["blog"]
    assert source_labels({"source_kind": "wire"}) == ["unlabelled"]  # an article's field
    assert source_labels({}) == ["unlabelled"]


def test_source_labels_read_the_fields_the_pipeline_stores() -> None:
    """What ``alert_document`` writes, not a hand-made document: the kinds of its sources,
    from the flat field alone (the inbox may load alerts without their ``sources``)."""
    wire = SourceRef(id="reuters", type="rss", kind=SourceKind.WIRE)
    state = SourceRef(id="tass", type="rss", kind=SourceKind.STATE_AFFILIATED)
    unlabelled = SourceRef(id="blog", type="rss")
    first = seed.article(1, "s", "reuters", "en", "long_range_strike", "t", datetime.now(UTC))
    alert = alerting.new_alert(seed.RULES["strikes"], first, first.topics[0], first.first_seen_at)
    alert = alert.model_copy(update={"sources": (wire, state, unlabelled)})
    doc = alerting.alert_document(alert)
    assert source_labels(doc) == ["state_affiliated", "wire"]
    assert source_labels({k: v for k, v in doc.items() if k != "sources"}) == [
        "state_affiliated", "wire"]


def test_the_label_filter_uses_source_kinds_when_alerts_carry_them(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "docs.sqlite")
    store.setup()
    for n, kind in enumerate(("state media", "wire", None)):
        doc = {**ALERT, "alert_id": f"a{n}", "title": f"alert {n}",
               "created_at": (datetime.now(UTC) - timedelta(hours=n + 1)).isoformat()}
        if kind:
            doc["source_kinds"] = [kind]
        store.create("alerts", f"a{n}", doc)
    app = create_app(store, Credentials(api_keys={"key": "bot"}))
    with TestClient(app, headers={"authorization": "Bearer key"}) as client:
        page = client.get("/", params={"label": "wire"}).text
        assert 'data-alert="a1"' in page and 'data-alert="a0"' not in page
        assert 'data-alert="a2"' in client.get("/", params={"label": "unlabelled"}).text
        everything = client.get("/").text
        assert all(f'data-alert="a{n}"' in everything for n in range(3))
        assert '<option value="state media">' in everything


def test_a_mute_holds_back_delivery_on_the_embedded_store_too(tmp_path: Path) -> None:
    from newsmon.pipeline.alerts.channels.console import ConsoleChannel
    from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig
    from newsmon.pipeline.alerts.delivery import Deliverer
    from newsmon.serve.feedback import record_action

    store = SqliteStore(tmp_path / "docs.sqlite")
    store.setup()
    cfg = AlertsConfig(channels={"c": ConsoleChannel()},
                       rules=(AlertRule(name="strikes", topic="long_range_strike",
                                        channels=("c",)),))
    # the mute is set on an older alert of the same story; the new one is held back by it
    store.create("alerts", "old", {**ALERT, "alert_id": "old", "pending": []})
    store.create("alerts", "new", {**ALERT, "alert_id": "new", "pending": ["c"]})
    store.create("alerts", "other", {**ALERT, "alert_id": "other", "story_id": "s2",
                                     "pending": ["c"]})
    record_action(store, "old", Request("mute_story", by="alice"), NOW)
    [held] = Deliverer(store, cfg).deliver("new", NOW)
    assert held.status == "throttled" and held.error.startswith("muted: story s1 until")
    [sent] = Deliverer(store, cfg).deliver("other", NOW)
    assert sent.status == "sent"


def test_serve_refuses_to_start_with_nobody_allowed_in(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from newsmon.cli import app

    monkeypatch.delenv("NEWSMON_INBOX_USERS", raising=False)
    monkeypatch.delenv("NEWSMON_INBOX_API_KEYS", raising=False)
    config = tmp_path / "newsmon.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\nsearch:\n  backend: embedded\n")
    result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "no users or API keys" in result.output
    hashed = CliRunner().invoke(app, ["serve", "hash-password"], input="s3cret\n")
    assert hashed.exit_code == 0 and verify_password("s3cret", hashed.output.strip())
