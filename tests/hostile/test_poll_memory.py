"""The memory of a poll pass stays under 300 MB whatever one response holds (issue 12).

Each hostile response is polled by a real Poller with the shipped limits (10 MB, 60 s) in a
process of its own, whose peak resident memory is that pass's and nothing else's: the kernel's
high-water mark of the process's own memory (``VmHWM``). Not ``ru_maxrss`` of
``resource.getrusage``: on Linux it keeps the peak of the process that forked the child (here
pytest, which holds the bombs) across ``exec``. The process also runs under an address-space
limit, so a regression fails here instead of taking the machine's memory. The figures are
printed (``pytest -s``) and recorded in docs/reliability.md:

    .venv/bin/python -m pytest tests/hostile/test_poll_memory.py -s -p no:cacheprovider
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.hostile.polling import MB, encode, feed_xml, item_xml, zeros
from tests.hostile.server import (
    Route,
    chunked,
    endless_chunks,
    hostile_server,
    huge,
    respond,
    until_close,
)

pytestmark = pytest.mark.timeout(300)

LIMIT_MB = 300
#: Far above any healthy pass, far below what a decompression bomb asks for.
ADDRESS_SPACE = 3 * 1024 * MB

CHILD = """
import json, resource, sys, tempfile
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[2]), int(sys.argv[2])))
from newsmon.connectors.publisher import ListPublisher
from newsmon.connectors.runner import Poller
from newsmon.connectors.base import Defaults
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.rss import RssSource

def peak_kb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

base = peak_kb()
source = RssSource(id="hostile", type="rss", url=sys.argv[1], name="H", lang="en", country="GB")
config = FeedsConfig(defaults=Defaults(min_interval_s=0), sources=[source])
with tempfile.TemporaryDirectory() as tmp:
    with Poller(config, Path(tmp) / "state.sqlite", ListPublisher()) as poller:
        result = poller.poll_once(force=True).results[0]
print(json.dumps({"status": result.status, "error_kind": result.error_kind,
                  "new": result.new_items, "base_kb": base,
                  "peak_kb": peak_kb()}))
"""

GB = 1024 * MB


@functools.cache
def big_feed() -> bytes:
    """A real feed just under the 10 MB limit: 20,000 items (feedparser's worst honest case)."""
    items = [item_xml(f"g{i}", f"Item {i}: Truppen für die Ukraine, ВОЙСКА у границы",
                      f"<description>{'Lorem ipsum dolor sit amet. ' * 12}</description>")
             for i in range(20_000)]
    body = feed_xml(items).encode()
    assert 8 * MB < len(body) < 10 * MB
    return body


def bomb(chain: list[str], size: int, framing: Callable[..., Route] = respond) -> Route:
    headers = {"Content-Encoding": ", ".join(chain), "Content-Type": "application/rss+xml"}
    return framing(zeros(chain, size), headers=headers)


CASES: dict[str, tuple[Callable[[], Route], str | None]] = {
    # name: (route, expected error kind; None: the feed is read)
    "gzip,gzip 1 GB, Content-Length": (lambda: bomb(["gzip", "gzip"], GB), "too-large"),
    "gzip 1 GB, chunked": (lambda: bomb(["gzip"], GB, chunked), "too-large"),
    "deflate,gzip 1 GB, until close": (lambda: bomb(["deflate", "gzip"], GB, until_close),
                                       "too-large"),
    "br 1 GB, chunked": (lambda: bomb(["br"], GB, chunked), "too-large"),
    "zstd 1 GB": (lambda: bomb(["zstd"], GB), "too-large"),
    "gzip,br,zstd,deflate 1 GB": (lambda: bomb(["gzip", "br", "zstd", "deflate"], GB),
                                  "too-large"),
    "identity 100 MB, no Content-Length": (lambda: huge(100 * MB, declare_length=False),
                                           "too-large"),
    "endless chunked": (lambda: endless_chunks(), "too-large"),
    "9.5 MB feed of 20,000 items, gzip": (
        lambda: respond(encode(big_feed(), ["gzip"]), headers={
            "Content-Encoding": "gzip", "Content-Type": "application/rss+xml"}), None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_poll_pass_stays_under_300_mb(name: str) -> None:
    make_route, expected = CASES[name]
    with hostile_server({"/feed": make_route()}) as srv:
        child = subprocess.run([sys.executable, "-c", CHILD, srv.url("/feed"),
                                str(ADDRESS_SPACE)],
                               capture_output=True, text=True, timeout=240, check=False)
    assert child.returncode == 0, child.stderr[-3000:]
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    peak_mb, base_mb = figures["peak_kb"] / 1024, figures["base_kb"] / 1024
    print(f"\n{name:<38} peak {peak_mb:6.1f} MB (after imports {base_mb:5.1f} MB):"
          f" {figures['status']} {figures['error_kind'] or ''} {figures['new']} new")
    if expected is None:
        assert figures["status"] == "ok" and figures["new"] == 20_000, figures
    else:
        assert figures["error_kind"] == expected, figures
    assert peak_mb < LIMIT_MB
