"""docs/settings.md is generated from the settings models and must match them."""

from __future__ import annotations

from pathlib import Path

from newsmon.config import load_settings
from newsmon.ops.settings_doc import render, settings_docs

ROOT = Path(__file__).resolve().parents[2]


def test_docs_settings_md_is_up_to_date() -> None:
    doc = ROOT / "docs" / "settings.md"
    assert doc.read_text(encoding="utf-8") == render(), (
        "docs/settings.md is out of date: run `newsmon config docs --out docs/settings.md`"
    )


def test_every_setting_is_described_and_every_variable_works(tmp_path: Path) -> None:
    """Each row's variable really sets that key (secrets included): the table does not lie."""
    samples = {"path": "some/where", "integer": "7", "number": "2.5", "boolean": "false"}
    # Settings whose values have a form of their own (checked at load time).
    by_key = {"kafka.bootstrap_servers": "kafka-1.example:9093,[2001:db8::1]:9094",
              "kafka.request_timeout_ms": "7000", "search.url": "https://search.example:9243",
              "poller.shard_session_timeout_ms": "7000",
              "poller.shard_transaction_timeout_ms": "7000"}
    for doc in settings_docs():
        assert doc.description, f"{doc.key} has no docstring in newsmon/config.py"
        if doc.key in by_key:
            value = by_key[doc.key]
        elif doc.type.startswith("`"):
            value = doc.type.split("`")[-2]  # the last literal choice
        else:
            value = samples.get(doc.type.split(" ")[0], "s3cret-value")
        settings = load_settings(tmp_path / "absent.yaml", environ={doc.env: value})
        node: object = settings
        for part in doc.key.split("."):
            node = getattr(node, part)
        shown = node.get_secret_value() if doc.secret else node  # type: ignore[attr-defined]
        if doc.key in ("feeds", "topics", "alerts"):
            shown = Path(str(shown)).relative_to(tmp_path)
        assert str(shown).lower() == value.lower(), doc.key
