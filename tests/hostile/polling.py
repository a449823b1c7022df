"""What the hostile tests of issue 12 share: bodies in any Content-Encoding chain (bombs
included), feeds with good items around a bad one, and one pass of the real Poller over
hostile servers with what it recorded (results, published items, dead letters, problems).
"""

from __future__ import annotations

import gzip
import random
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import brotli
import zstandard

from newsmon.connectors.base import Defaults
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.http import HttpClient, HttpSettings
from newsmon.connectors.items import DEAD_LETTER_PROBLEMS
from newsmon.connectors.publisher import ListPublisher
from newsmon.connectors.results import PollReport, SourceResult
from newsmon.connectors.rss import RssSource
from newsmon.connectors.runner import Poller
from newsmon.metrics import REGISTRY
from newsmon.models import DeadLetter, RawItem

MB = 1024 * 1024
START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


# --- bodies ----------------------------------------------------------------------------------


def _deflate(data: bytes) -> bytes:
    return zlib.compress(data, 9)


def _br(data: bytes) -> bytes:
    return brotli.compress(data, quality=5)


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


CODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: gzip.compress(data, 9), "deflate": _deflate, "br": _br, "zstd": _zstd,
    "identity": lambda data: data,
}


def encode(body: bytes, chain: Sequence[str]) -> bytes:
    """``body`` with the codings of ``chain`` applied in the order a Content-Encoding header
    lists them (the first listed was applied first)."""
    for name in chain:
        body = CODERS[name](body)
    return body


def zeros(chain: Sequence[str], size: int) -> bytes:
    """``size`` zero bytes encoded with ``chain``: a bomb. The first coding compresses the
    zeros as a stream (never holding them all); the others wrap its small output."""
    first, rest = chain[0], list(chain[1:])
    block = b"\0" * (16 * MB)
    count = size // len(block)
    if first == "gzip":
        z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        data = b"".join(z.compress(block) for _ in range(count)) + z.flush()
    elif first == "deflate":
        z = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
        data = b"".join(z.compress(block) for _ in range(count)) + z.flush()
    elif first == "br":
        c = brotli.Compressor(quality=5)
        data = b"".join(c.process(block) for _ in range(count)) + c.finish()
    else:
        zc = zstandard.ZstdCompressor(level=3).compressobj()
        data = b"".join(zc.compress(block) for _ in range(count)) + zc.flush()
    return encode(data, rest)


# --- feeds -----------------------------------------------------------------------------------

#: The text every good item carries: non-ASCII in two scripts, so a wrong decoding shows.
GOOD_TITLES = ("Truppen für die Ukraine", "ВОЙСКА у границы", "Plain English headline")


def item_xml(guid: str, title: str, extra: str = "") -> str:
    return (f"<item><guid>{guid}</guid><title>{title}</title>"
            f"<link>https://news.example/{guid}</link>{extra}</item>")


def feed_xml(items: Sequence[str], *, channel: str = "", decl: str = ' encoding="utf-8"'
             ) -> str:
    return (f'<?xml version="1.0"{decl}?><rss version="2.0"><channel><title>Hostile'
            f"</title>{channel}{''.join(items)}</channel></rss>")


def good_items() -> list[str]:
    return [item_xml(f"good-{i}", title) for i, title in enumerate(GOOD_TITLES)]


def good_feed(**kw: str) -> bytes:
    return feed_xml(good_items(), **kw).encode("utf-8")


# --- one poll pass ---------------------------------------------------------------------------


def problem_counts() -> dict[str, float]:
    """The poller's problem counters by kind (process-wide: compare before and after)."""
    counts: dict[str, float] = {}
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "newsmon_connector_problems_total":
                kind = sample.labels["kind"]
                counts[kind] = counts.get(kind, 0.0) + sample.value
    return counts


@dataclass
class Pass:
    """What one or more poll passes came to."""

    reports: list[PollReport]
    published: list[RawItem]
    letters: list[DeadLetter]
    #: Problems counted during the passes, by kind.
    problems: dict[str, float]

    @property
    def report(self) -> PollReport:
        return self.reports[-1]

    def result(self, source_id: str = "hostile") -> SourceResult:
        return next(r for r in self.report.results if r.source_id == source_id)

    def titles(self) -> list[str]:
        return [item.title for item in self.published]

    def dead_kinds(self) -> set[str]:
        return {letter.error.split(":", 1)[0] for letter in self.letters}


def poll_pass(
    tmp_path: Path,
    urls: Mapping[str, str] | str,
    *,
    http: HttpSettings | None = None,
    client: HttpClient | None = None,
    lang: str = "en",
    passes: int = 1,
    seconds_between: float = 3600.0,
    allow_private: bool = False,
    full_text: bool = False,
) -> Pass:
    """``passes`` forced poll passes of a real Poller over the feeds ``urls`` (source id ->
    URL, or one URL for the source ``hostile``), a clock that moves ``seconds_between`` from
    one to the next, and a list publisher."""
    if isinstance(urls, str):
        urls = {"hostile": urls}
    sources = [RssSource(id=sid, type="rss", url=url, name=sid, lang=lang, country="GB",
                         full_text=full_text) for sid, url in urls.items()]
    defaults = Defaults.model_validate({"min_interval_s": 0, "interval_s": 900,
                                        "http": http or HttpSettings()})
    config = FeedsConfig(defaults=defaults, sources=sources)
    now = [START]
    publisher = ListPublisher()
    before = problem_counts()
    reports = []
    with Poller(config, tmp_path / "state.sqlite", publisher, clock=lambda: now[0],
                rng=random.Random(7), http=client, allow_private=allow_private) as poller:
        for _ in range(passes):
            reports.append(poller.poll_once(force=True))
            now[0] += timedelta(seconds=seconds_between)
        letters = poller.state.dead_letters()
    after = problem_counts()
    problems = {k: v - before.get(k, 0.0) for k, v in after.items() if v > before.get(k, 0.0)}
    return Pass(reports, list(publisher.items), letters, problems)


def assert_dropped_are_dead_letters(run: Pass) -> None:
    """Every problem that dropped input was parked with its reason."""
    dropped = {kind for kind in run.problems if kind in DEAD_LETTER_PROBLEMS}
    assert dropped <= run.dead_kinds(), (dropped, [dl.error for dl in run.letters])
