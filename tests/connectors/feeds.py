"""Builders of small RSS documents for tests (the fixture files cover the odd cases), and of
the configuration a `newsmon run` over them reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Entry:
    guid: str
    title: str
    link: str = ""
    description: str = ""
    pub_date: str = "Mon, 25 Nov 2024 10:00:00 +0000"


def rss(entries: Sequence[Entry], *, title: str = "Test feed", ttl: int | None = None) -> bytes:
    items = "".join(
        "<item>"
        f"<guid isPermaLink=\"false\">{escape(e.guid)}</guid>"
        f"<title>{escape(e.title)}</title>"
        + (f"<link>{escape(e.link)}</link>" if e.link else "")
        + (f"<description>{escape(e.description)}</description>" if e.description else "")
        + f"<pubDate>{e.pub_date}</pubDate>"
        "</item>"
        for e in entries
    )
    ttl_tag = f"<ttl>{ttl}</ttl>" if ttl is not None else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://news.example/</link>{ttl_tag}"
        f"{items}</channel></rss>"
    ).encode()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def embedded_config(tmp_path: Path, feeds: dict[str, Any]) -> Path:
    """``tmp_path/newsmon.yaml`` for ``newsmon run`` on the embedded store: ``feeds`` as its
    feeds.yaml, the shipped topics and alert rules, state in ``tmp_path/state``."""
    (tmp_path / "feeds.yaml").write_text(yaml.safe_dump(feeds, allow_unicode=True))
    config = tmp_path / "newsmon.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"), "feeds": "feeds.yaml",
        "topics": str(ROOT / "config" / "topics.yaml"),
        "alerts": str(ROOT / "config" / "alerts.yaml"), "search": {"backend": "embedded"}}))
    return config
