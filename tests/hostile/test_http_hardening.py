"""Issue 12, the HTTP side: layered compression past the size limit (defect 3), numbers and
validators in headers (defect 2), redirects of configured feeds (defect 5).

Every case goes through the real Poller (connectors.runner) and the project's HTTP client
against servers on 127.0.0.1 that send what they like (tests/hostile/server.py); the redirect
guard is also shown through the ``newsmon run`` command. Each class is tried with several
triggers, not only the one the issue names.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from newsmon.connectors.guard import AddressGuard
from newsmon.connectors.health import MAX_RETRY_AFTER_S
from newsmon.connectors.http import HttpClient, HttpSettings
from tests.hostile.polling import (
    GOOD_TITLES,
    MB,
    START,
    encode,
    good_feed,
    poll_pass,
    zeros,
)
from tests.hostile.server import (
    chunked,
    hostile_server,
    raw,
    redirect,
    respond,
    until_close,
)

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
NEWSMON = Path(sys.executable).parent / "newsmon"
FAST = HttpSettings(connect_timeout_s=2, read_timeout_s=2, total_timeout_s=10,
                    max_bytes=10 * MB)
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}


def answer(status: str, headers: dict[str, str | bytes], body: bytes = b"") -> bytes:
    """A whole response whose header values may be any bytes (UTF-8 digits, controls)."""
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    out = head.encode()
    for name, value in headers.items():
        out += name.encode() + b": " + (value if isinstance(value, bytes) else value.encode())
        out += b"\r\n"
    return out + b"\r\n" + body


# --- defect 3: compression -------------------------------------------------------------------

#: Each decodes to 256 MB of zeros (old client: each 64 KB raw chunk inflated whole).
BOMB_CHAINS = [["gzip", "gzip"], ["gzip"], ["deflate", "gzip"], ["br"], ["zstd"],
               ["gzip", "br", "zstd"], ["zstd", "zstd"], ["deflate", "deflate", "deflate"],
               ["br", "identity", "gzip"]]


@functools.cache
def bomb(chain: tuple[str, ...]) -> bytes:
    return zeros(chain, 256 * MB)


FRAMINGS = {
    "content-length": lambda body, headers: respond(body, headers=headers),
    "chunked": lambda body, headers: chunked(body, headers=headers),
    "until-close": lambda body, headers: until_close(body, headers=headers),
}


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
@pytest.mark.parametrize("chain", BOMB_CHAINS, ids=",".join)
def test_a_compression_bomb_in_any_coding_chain_stops_at_the_limit(
        chain: list[str], framing: str, tmp_path: Path) -> None:
    """``gzip, gzip`` of 24 KB took the poller to 10.5 GB (issue 12): every chain, framed
    with a length, chunked or until the connection closes, ends as ``too-large`` once the
    decoded body (or a layer) passes max_bytes. Memory: test_poll_memory.py."""
    body = bomb(tuple(chain))
    headers = {"Content-Encoding": ", ".join(chain), "Content-Type": "application/rss+xml"}
    with hostile_server({"/feed": FRAMINGS[framing](body, headers)}) as srv:
        started = time.monotonic()
        run = poll_pass(tmp_path, srv.url("/feed"), http=FAST)
        elapsed = time.monotonic() - started
    result = run.result()
    assert (result.status, result.error_kind) == ("error", "too-large"), result
    assert f"over {FAST.max_bytes} bytes" in (result.error or "")
    assert "too-large" in run.dead_kinds()
    assert elapsed < 10


@pytest.mark.parametrize("chain", [["gzip"], ["x-gzip"], ["deflate"], ["br"], ["zstd"],
                                   ["identity"], ["gzip", "gzip"], ["GZIP", " Deflate "],
                                   ["br", "deflate", "zstd", "gzip"]], ids=",".join)
def test_a_feed_in_any_supported_coding_chain_is_read(chain: list[str], tmp_path: Path) -> None:
    body = encode(good_feed(), [c.strip().lower().removeprefix("x-") for c in chain])
    route = respond(body, headers={**RSS, "Content-Encoding": ", ".join(chain)})
    with hostile_server({"/feed": route}) as srv:
        run = poll_pass(tmp_path, srv.url("/feed"))
    assert run.result().status == "ok" and run.titles() == list(GOOD_TITLES)


def test_raw_deflate_sent_as_deflate_is_read_and_codings_sent_are_what_is_decoded(
        tmp_path: Path) -> None:
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)  # no zlib header
    body = packer.compress(good_feed()) + packer.flush()
    with hostile_server({"/feed": respond(body, headers={**RSS, "Content-Encoding": "deflate"})}
                        ) as srv:
        run = poll_pass(tmp_path, srv.url("/feed"))
    assert run.titles() == list(GOOD_TITLES)
    assert b"\r\naccept-encoding: gzip, deflate, br, zstd\r\n" in srv.heads[0].lower()


@pytest.mark.parametrize(("coding", "hard"), [
    ("compress", True), ("gzip, foo", True), ("gzip;q=1", True), ("x-bzip2", True),
    ("gzip, gzip, gzip, gzip, gzip", True), ("gzip", False), ("br", False), ("zstd", False),
    ("deflate", False),
])
def test_unknown_codings_and_corrupt_data_are_a_clear_error(coding: str, hard: bool,
                                                          tmp_path: Path) -> None:
    """An unknown coding is refused before the body is read (hard: retrying will not help);
    data that is not what its coding says (here the plain feed) is a soft decoding error."""
    route = respond(good_feed(), headers={**RSS, "Content-Encoding": coding})
    with hostile_server({"/feed": route}) as srv:
        run = poll_pass(tmp_path, srv.url("/feed"))
    result = run.result()
    assert (result.status, result.error_kind) == ("error", "decoding"), result
    assert "decoding" in run.dead_kinds()
    expected = "content codings" if coding.count(",") >= 4 else (
        "unsupported Content-Encoding" if hard else "invalid")
    assert expected in (result.error or ""), result.error


def test_a_zstd_frame_asking_for_a_large_window_is_refused(tmp_path: Path) -> None:
    """A zstd frame may ask for a 2 GB window (memory allocated up front); RFC 9659 caps
    HTTP's zstd at 8 MB and so does the decoder (this one asks for 128 MB)."""
    import zstandard

    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=27)
    packer = zstandard.ZstdCompressor(compression_params=params).compressobj()
    body = packer.compress(good_feed() * 50) + packer.flush()
    with hostile_server({"/feed": respond(body, headers={**RSS, "Content-Encoding": "zstd"})}
                        ) as srv:
        run = poll_pass(tmp_path, srv.url("/feed"))
    result = run.result()
    assert result.error_kind == "decoding" and "too much memory" in (result.error or "")


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
def test_compressed_nothing_is_capped_by_its_raw_size(framing: str, tmp_path: Path) -> None:
    """12 MB that decode to nothing at all (empty stored deflate blocks): no decoded byte
    ever counts against the limit, so the raw body is capped too."""
    body = b"\x78\x9c" + b"\x00\x00\x00\xff\xff" * (12 * MB // 5)
    headers = {**RSS, "Content-Encoding": "deflate"}
    with hostile_server({"/feed": FRAMINGS[framing](body, headers)}) as srv:
        started = time.monotonic()
        run = poll_pass(tmp_path, srv.url("/feed"), http=FAST)
    result = run.result()
    assert result.error_kind == "too-large"
    # A declared length is refused before reading; otherwise the raw bytes are counted.
    assert ("Content-Length" if framing == "content-length" else "encoded body over") in (
        result.error or "")
    assert time.monotonic() - started < 10


# --- defect 2: numbers and validators in headers ---------------------------------------------

GARBAGE_RETRY_AFTER: list[str | bytes] = [
    "²".encode(), "٣".encode(), "1" * 5000, "-5", "1.5", "1e3", "0x10", "  ", "+60",
    "Mon, 01 Jan 99999 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 +9999",
    "Sat, 01 Jan 0000 00:00:00 GMT", "Tue, 32 Jan 2026 25:61:61 GMT", "tomorrow", "９０",
]


@pytest.mark.parametrize("value", GARBAGE_RETRY_AFTER, ids=lambda v: repr(v)[:20])
def test_a_retry_after_that_is_no_plain_number_or_date_is_ignored(
        value: str | bytes, tmp_path: Path) -> None:
    """``'²'.isdigit()`` is true and ``int('²')`` raises: the whole poll ended as an
    ``internal`` error. Now the value is ignored and the usual backoff applies."""
    with hostile_server({"/feed": raw(answer("429 Too Many Requests", {"Retry-After": value}))}
                        ) as srv:
        run = poll_pass(tmp_path, srv.url("/feed"))
    result = run.result()
    assert (result.status, result.error_kind) == ("throttled", "http-429"), result
    assert result.next_due_at is not None
    wait = result.next_due_at - START
    assert timedelta(seconds=900) <= wait <= timedelta(seconds=990)  # interval + jitter


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120), (" 3600 ", 3600), ("999999999", MAX_RETRY_AFTER_S),
    ("Mon, 05 Jan 2026 14:00:00 GMT", 7200),
])
def test_a_readable_retry_after_is_honoured(value: str, seconds: float, tmp_path: Path) -> None:
    with hostile_server({"/feed": raw(answer("429 Too Many Requests", {"Retry-After": value}))}
                        ) as srv:
        run = poll_pass(tmp_path, srv.url("/feed"))
    due = run.result().next_due_at
    assert due is not None
    assert due - START >= timedelta(seconds=max(seconds, 900))


@pytest.mark.parametrize("value", ["²".encode(), b"-1", b"1e3", b"12abc", b"5, 6",
                                   b"99999999999999999999999", b"\xd9\xa3"])
def test_a_content_length_that_is_no_plain_number_is_a_clean_error(
        value: bytes, tmp_path: Path) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nConnection: close\r\n"
    response = head + b"Content-Length: " + value + b"\r\n\r\n" + good_feed()
    with hostile_server({"/feed": raw(response)}) as srv:
        run = poll_pass(tmp_path, srv.url("/feed"))
    result = run.result()
    assert result.error_kind != "internal", result
    assert result.status == "ok" or result.error_kind in ("protocol", "too-large"), result


@pytest.mark.parametrize("etag", ["é".encode(), "ВОЙСКА".encode(), b"\xff\xfe", b"x" * 5000,
                                  b'"a"\xc2\xb2'])
def test_validators_that_cannot_be_sent_back_do_not_break_later_polls(
        etag: bytes, tmp_path: Path) -> None:
    """A non-ASCII ETag was stored and sent back: httpx refused to encode it, so every later
    poll of the feed raised (``internal``). Such a validator is not kept; a good one is."""
    garbage = answer("200 OK", {"Content-Type": "application/rss+xml", "ETag": etag,
                                "Last-Modified": etag}, good_feed())
    good = answer("200 OK", {"Content-Type": "application/rss+xml", "ETag": '"v1"'},
                  good_feed())
    with hostile_server({"/garbage": raw(garbage), "/good": raw(good)}) as srv:
        run = poll_pass(tmp_path, {"hostile": srv.url("/garbage"), "fine": srv.url("/good")},
                        passes=2)
    for report in run.reports:
        assert [r.status for r in report.results] in (
            ["ok", "ok"], ["ok", "not-modified"], ["not-modified", "ok"],
            ["not-modified", "not-modified"]), report.results
    assert sorted(run.titles()) == sorted(GOOD_TITLES * 2)
    sent = [h.lower() for h in srv.heads]
    second_garbage = [h for h in sent if h.startswith(b"get /garbage")][1]
    second_good = [h for h in sent if h.startswith(b"get /good")][1]
    assert b"if-none-match" not in second_garbage and b"if-modified-since" not in second_garbage
    assert b'if-none-match: "v1"' in second_good  # the check can fail: good ones go back


# --- defect 5: redirects of configured feeds -------------------------------------------------

SECRET = "/_cluster/settings"


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{port}" + SECRET,       # the trigger: loopback, another port
    "http://localhost:{port}" + SECRET,
    "http://2130706433:{port}" + SECRET,      # 127.0.0.1 written as one number
    "http://0x7f.1:{port}" + SECRET,
    "http://[::ffff:127.0.0.1]:{port}" + SECRET,
    "//127.0.0.1:{port}" + SECRET,            # scheme-relative
    "http://10.255.255.1/admin", "http://169.254.169.254/latest/meta-data/",
])
@pytest.mark.parametrize("status", ["302 Found", "301 Moved Permanently", "307 Temporary Redirect"])
def test_a_configured_feed_cannot_redirect_to_a_private_address(
        target: str, status: str, tmp_path: Path) -> None:
    with hostile_server({SECRET: respond(b"secret")}) as inner:
        location = target.format(port=inner.port)
        with hostile_server({"/feed": redirect(location, status)}) as outer:
            run = poll_pass(tmp_path, outer.url("/feed"), http=FAST)
        assert inner.hits == []
    result = run.result()
    assert (result.status, result.error_kind) == ("error", "blocked-redirect"), result
    shown = location.split("//", 1)[1].split("/", 1)[0]
    assert shown in (result.error or "")
    assert "defaults.http.redirect_allow" in (result.error or "")
    letters = [dl for dl in run.letters if dl.error.startswith("blocked-redirect")]
    assert len(letters) == 1 and shown in json.loads(letters[0].payload)["detail"]


def test_a_redirect_chain_is_checked_at_every_hop(tmp_path: Path) -> None:
    """Same origin (allowed), then an other scheme on the same host and port (not the same
    origin: refused)."""
    with hostile_server({}) as srv:
        srv.routes["/feed"] = redirect("/moved")
        srv.routes["/moved"] = redirect(f"https://127.0.0.1:{srv.port}/feed")
        run = poll_pass(tmp_path, srv.url("/feed"), http=FAST)
    assert run.result().error_kind == "blocked-redirect" and srv.hits == ["/feed", "/moved"]


def test_redirects_to_the_own_origin_the_allow_list_and_public_addresses_are_followed(
        tmp_path: Path) -> None:
    with hostile_server({"/feed": respond(good_feed(), headers=RSS)}) as listed, \
            hostile_server({"/feed": respond(good_feed(), headers=RSS)}, host="127.0.0.2"
                           ) as public, \
            hostile_server({}) as origin:
        origin.routes["/same"] = redirect("/real")
        origin.routes["/real"] = respond(good_feed(), headers=RSS)
        origin.routes["/listed"] = redirect(listed.url("/feed"))
        origin.routes["/public"] = redirect(public.url("/feed"))
        settings = FAST.model_copy(update={"redirect_allow": (f"127.0.0.1:{listed.port}",)})
        # 127.0.0.2 stands for a public address: the only one the redirect guard lets by.
        client = HttpClient(settings, redirect_guard=AddressGuard(
            is_allowed=lambda address: address == "127.0.0.2"))
        with client:
            run = poll_pass(tmp_path, {"same": origin.url("/same"),
                                       "listed": origin.url("/listed"),
                                       "public": origin.url("/public")},
                            http=settings, client=client)
    assert {r.source_id: r.status for r in run.report.results} == {
        "same": "ok", "listed": "ok", "public": "ok"}
    assert len(run.published) == 3 * len(GOOD_TITLES)
    assert listed.hits == ["/feed"] and public.hits == ["/feed"]


def test_a_poller_that_allows_private_addresses_follows_feed_redirects_to_them(
        tmp_path: Path) -> None:
    """``Poller(allow_private=True)``, for a deployment that reads an intranet, trusts
    private addresses for redirects of configured feeds as for article links."""
    with hostile_server({"/feed": respond(good_feed(), headers=RSS)}) as inner, \
            hostile_server({}) as outer:
        outer.routes["/feed"] = redirect(inner.url("/feed"))
        run = poll_pass(tmp_path, outer.url("/feed"), http=FAST, allow_private=True)
    assert run.result().status == "ok" and inner.hits == ["/feed"]


def test_a_redirect_target_that_rebinds_to_a_private_address_is_stopped_at_connect(
        tmp_path: Path) -> None:
    """The name resolves to a "public" address when the hop is checked and to loopback when
    the connection is made: the connect-time check of the hop refuses it."""
    answers = iter([["127.0.0.2"], ["127.0.0.1"], ["127.0.0.1"]])
    guard = AddressGuard(resolver=lambda host, port: next(answers),
                         is_allowed=lambda address: address == "127.0.0.2")
    with hostile_server({SECRET: respond(b"secret")}) as inner:
        with hostile_server({}) as outer:
            outer.routes["/feed"] = redirect(f"http://rebind.example:{inner.port}{SECRET}")
            with HttpClient(FAST, redirect_guard=guard) as client:
                run = poll_pass(tmp_path, outer.url("/feed"), http=FAST, client=client)
        assert inner.hits == []
    result = run.result()
    assert result.error_kind == "blocked-redirect" and "connect time" in (result.error or "")


UNREADABLE_URLS = ["http://[zz/x", "http://x.example:99999/", "http://xn--/", "http://[::1",
                   "http://xn--ä/", "http://256.256.256.256/"]


@pytest.mark.parametrize("location", UNREADABLE_URLS)
def test_an_unreadable_location_is_a_clean_error(location: str, tmp_path: Path) -> None:
    """``Location: http://[zz`` made urllib raise ValueError, ``http://xn--/`` made httpx
    raise IDNAError (reading the Location for itself): the poll crashed (``internal``)."""
    response = answer("302 Found", {"Location": location.encode()})
    with hostile_server({"/feed": raw(response)}) as srv:
        run = poll_pass(tmp_path, srv.url("/feed"), http=FAST)
    result = run.result()
    assert result.status == "error" and result.error_kind in ("bad-url", "protocol"), result
    assert result.error_kind in run.dead_kinds()


def test_article_links_that_are_no_readable_url_cost_only_their_full_text(
        tmp_path: Path) -> None:
    items = [f"<item><guid>a{i}</guid><title>Item {i}</title><link>{escape(link)}</link></item>"
             for i, link in enumerate(UNREADABLE_URLS)]
    body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{"".join(items)}'
            "</channel></rss>").encode()
    with hostile_server({"/feed": respond(body, headers=RSS)}) as srv:
        run = poll_pass(tmp_path, srv.url("/feed"), http=FAST, full_text=True)
    assert run.result().status == "ok"
    assert run.titles() == [f"Item {i}" for i in range(len(UNREADABLE_URLS))]
    assert set(run.problems) <= {"full-text-bad-url", "full-text-dns", "full-text-protocol",
                                 "full-text-blocked-address"}, run.problems


def test_redirect_allow_entries_are_checked_when_the_config_is_read() -> None:
    assert HttpSettings(redirect_allow=("Feeds.LAN:8080", "[::1]", "10.0.0.5")
                        ).redirect_allow == ("feeds.lan:8080", "[::1]", "10.0.0.5")
    for bad in ("http://feeds.lan/", "feeds.lan:99999", "a b", ""):
        with pytest.raises(ValueError, match="redirect_allow"):
            HttpSettings(redirect_allow=(bad,))


def test_newsmon_run_does_not_follow_a_feed_redirect_to_loopback(tmp_path: Path) -> None:
    """The issue's trigger through the command an operator's cron runs: a configured feed
    on 127.0.0.1 answering 302 to another port of 127.0.0.1. Nothing reaches that port; the
    refusal is a dead letter naming the target (``newsmon deadletters``); a feed whose
    redirect target is in ``defaults.http.redirect_allow`` is read in the same run."""
    with hostile_server({SECRET: respond(b"secret")}) as inner, \
            hostile_server({"/feed": respond(good_feed(), headers=RSS)}) as allowed, \
            hostile_server({}) as outer:
        outer.routes["/evil"] = redirect(inner.url(SECRET))
        outer.routes["/fine"] = redirect(allowed.url("/feed"))
        (tmp_path / "feeds.yaml").write_text(
            f"defaults:\n  http:\n    redirect_allow: ['127.0.0.1:{allowed.port}']\n"
            "sources:\n"
            f"  - {{id: evil, type: rss, url: '{outer.url('/evil')}', name: Evil, lang: en,"
            " country: GB}\n"
            f"  - {{id: fine, type: rss, url: '{outer.url('/fine')}', name: Fine, lang: de,"
            " country: DE}\n")
        config = tmp_path / "newsmon.yaml"
        config.write_text(
            f"state_dir: {tmp_path / 'state'}\nfeeds: feeds.yaml\n"
            f"topics: {ROOT / 'config' / 'topics.yaml'}\n"
            f"alerts: {ROOT / 'config' / 'alerts.yaml'}\nsearch:\n  backend: embedded\n")
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        run = subprocess.run([str(NEWSMON), "run", "-c", str(config)], capture_output=True,
                             text=True, timeout=180, env=env, cwd=tmp_path, check=False)
        assert inner.hits == [], "the redirect target was contacted"
        assert allowed.hits == ["/feed"]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "blocked-redirect" in run.stdout + run.stderr
    listed = subprocess.run([str(NEWSMON), "deadletters", "--json", "-c", str(config)],
                            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
                            check=True)
    letters = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    refused = [dl for dl in letters if dl["source_id"] == "evil"]
    assert len(refused) == 1 and refused[0]["error"].startswith("blocked-redirect")
    assert inner.url(SECRET) in refused[0]["error"]
    assert not [dl for dl in letters if dl["source_id"] == "fine"]
