"""Builders of small RSS documents for tests (the fixture files cover the odd cases)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

FIXTURES = Path(__file__).parent / "fixtures"


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
