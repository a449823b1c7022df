"""Properties (hypothesis) of every parser of network data on the HTTP and feed side (issue 12):
RSS/Atom entry fields (title, link, guid, dates, content types, ttl, stray bytes) and the HTTP
headers the client uses (Retry-After, Content-Type, Content-Encoding, Content-Length, ETag,
Last-Modified, Location). Each asserts: no exception escapes; the good items of the same page
survive, with their text intact; an item that is dropped is a problem of a dead-letter kind
with its reason.

Derandomized with fixed example counts (as tests/hostile/test_fuzz.py): CI runs the same
examples every time, in about ten seconds for the module.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from newsmon.connectors.base import Defaults
from newsmon.connectors.codings import BodyTooLarge, CodingError, decode
from newsmon.connectors.fields import ascii_int, header_token, text_codec
from newsmon.connectors.http import HttpClient, HttpSettings, parse_retry_after
from newsmon.connectors.items import DEAD_LETTER_PROBLEMS
from newsmon.connectors.records import Cursor
from newsmon.connectors.rss import RssConnector, RssSource, parse_feed
from tests.hostile.polling import GOOD_TITLES, MB, encode, feed_xml, good_items, poll_pass
from tests.hostile.server import HostileServer, Wire, hostile_server, raw

pytestmark = pytest.mark.timeout(120)


def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


NOW = datetime(2026, 1, 5, tzinfo=UTC)
SOURCE = RssSource(id="props", type="rss", url="https://props.example/feed", name="P",
                   lang="ru", country="RU")

# --- single fields ---------------------------------------------------------------------------

NUMBERISH = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=string.digits + "²³٣٠۳९०１２ \t+-.eE_x", max_size=30),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)


@examples(500)
@given(NUMBERISH)
def test_ascii_int_reads_plain_ascii_numbers_only(value: str) -> None:
    number = ascii_int(value)
    plain = value.strip(" \t\r\n")
    if re.fullmatch(r"[0-9]{1,9}", plain):
        assert number == int(plain)
    else:
        assert number is None


HTTP_DATES = st.builds(
    lambda day, d, mon, y, h, mi, s, zone: f"{day}, {d} {mon} {y} {h}:{mi}:{s} {zone}",
    st.sampled_from(["Mon", "Tue", "Xyz", ""]), st.integers(-5, 99), st.sampled_from(
        ["Jan", "Feb", "Dec", "Foo"]), st.integers(-1, 10**6), st.integers(-1, 99),
    st.integers(0, 99), st.integers(0, 99), st.sampled_from(["GMT", "+0000", "+9999", "-1400",
                                                             "UTC", "", "PST"]))


@examples(500)
@given(st.one_of(NUMBERISH, HTTP_DATES, st.text(max_size=200)))
def test_retry_after_is_a_finite_wait_or_none(value: str) -> None:
    wait = parse_retry_after(value, NOW)
    assert wait is None or (0.0 <= wait < float("inf"))


@examples(300)
@given(st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode(
    "latin-1"))))
def test_header_tokens_can_always_be_sent_back(value: str) -> None:
    token = header_token(value)
    if token is not None:
        token.encode("ascii")
        assert "\r" not in token and "\n" not in token and len(token) <= 1024


@examples(300)
@given(st.one_of(st.text(max_size=20), st.sampled_from(
    ["utf-8", "UTF8", "koi8-r", "undefined", "unicode_escape", "idna", "rot13", "base64",
     "utf-16", "cp037", "x-mac-cyrillic"])))
def test_a_charset_name_is_usable_or_refused(name: str) -> None:
    codec = text_codec(name)
    if codec is not None:
        b"caf\xc3\xa9 \xff<".decode(codec, errors="replace")  # never raises


CODING = st.sampled_from(["gzip", "deflate", "br", "zstd", "identity"])


@examples(150)
@given(st.lists(CODING, max_size=4), st.binary(max_size=3000))
def test_every_supported_chain_decodes_to_its_body(chain: list[str], body: bytes) -> None:
    data = encode(body, chain)
    pieces = [data[i:i + 97] for i in range(0, len(data), 97)]
    assert b"".join(decode(iter(pieces), ", ".join(chain), 10 * MB)) == body


@examples(300)
@given(st.lists(st.one_of(CODING, st.text(max_size=8)), max_size=6).map(", ".join),
       st.binary(max_size=2000), st.integers(1, 5000))
def test_any_coding_and_bytes_decode_or_fail_cleanly(header: str, data: bytes, limit: int
                                                     ) -> None:
    try:
        out = b"".join(decode(iter([data[:500], data[500:]]), header, limit))
    except (CodingError, BodyTooLarge):
        return
    assert len(out) <= limit


# --- entry fields ----------------------------------------------------------------------------

TYPES = st.sampled_from(["", ' type="html"', ' type="text"', ' type="xhtml"',
                         ' type="text/plain"', ' type="application/octet-stream"',
                         ' type="²"', ' type=""'])
TEXTS = st.one_of(st.text(max_size=60), st.sampled_from(
    ["", " ", "&lt;b&gt;x&lt;/b&gt;", "<![CDATA[<p>x</p>]]>", "&#xD800;", "&#99999999;",
     "\ufeff", "Ü" * 50]))
DATES = st.one_of(HTTP_DATES, st.text(max_size=30), st.sampled_from(
    ["0000-00-00T00:00:00Z", "9999-12-31T23:59:59-14:00", "1970-01-01", "²³"]))
LINKS = st.one_of(st.text(max_size=40), st.sampled_from(
    ["http://[::1", "http://x.example:99999/", "javascript:alert(1)", "//x", "http://ä.example/",
     "https://news.example/a?utm_source=x"]))


def field(tag: str, text: str, attrs: str = "", *, raw_text: bool = False) -> str:
    return f"<{tag}{attrs}>{text if raw_text else escape(text)}</{tag}>"


HOSTILE_ITEMS = st.builds(
    lambda title, ttype, link, guid, date, summary, stype, content, ctype, cdata: "<item>" + (
        field("title", title, ttype) + field("link", link) + field("guid", guid)
        + field("pubDate", date) + field("description", summary, stype)
        + field("content:encoded", content, ctype, raw_text=cdata)) + "</item>",
    TEXTS, TYPES, LINKS, st.text(max_size=20).filter(lambda g: not g.startswith("good-")),
    DATES, TEXTS, TYPES, TEXTS, TYPES, st.booleans())


def feed_with(hostile: str, position: int, ttl: str, stray: bytes) -> bytes:
    items = good_items()
    items.insert(position % (len(items) + 1), hostile.replace("<item>", "<item>STRAY", 1))
    text = feed_xml(items, channel=field("ttl", ttl)).replace(
        '<rss version="2.0">',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">')
    return text.encode("utf-8").replace(b"STRAY", stray, 1)


def check_page(items: list[str], problems: list[tuple[str, str]]) -> None:
    """The good items all came through, text intact; the hostile one came through too, or a
    problem of a dead-letter kind says why not."""
    good = [t for t in items if t in GOOD_TITLES]
    assert good == list(GOOD_TITLES), items
    if len(items) == len(GOOD_TITLES):
        dropped = [(kind, message) for kind, message in problems if kind in DEAD_LETTER_PROBLEMS]
        assert dropped and all(message for _, message in dropped), problems


@examples(400)
@given(HOSTILE_ITEMS, st.integers(0, 3), NUMBERISH, st.binary(max_size=4),
       st.sampled_from(["", "application/rss+xml", "application/rss+xml; charset=utf-8",
                        "text/xml; charset=undefined", "text/html; charset=windows-1252"]))
def test_one_hostile_entry_costs_at_most_itself(hostile: str, position: int, ttl: str,
                                                stray: bytes, content_type: str) -> None:
    body = feed_with(hostile, position, ttl, stray)
    parsed = parse_feed(body, {"content-type": content_type}, SOURCE, now=NOW)
    assert parsed.fatal is None, parsed.fatal
    titles = [item.title for item in parsed.items]
    check_page(titles, [(p.kind, p.message) for p in parsed.problems])
    plain = ttl.strip(" \t\r\n")
    if re.fullmatch(r"[0-9]{1,9}", plain):
        assert parsed.ttl_s == int(plain) * 60
    else:
        assert parsed.ttl_s is None
    for item in parsed.items:
        item.to_json().decode("utf-8")  # every text encodes: no lone surrogate got through


@examples(15)
@given(HOSTILE_ITEMS, st.integers(0, 3), st.binary(max_size=4))
def test_through_the_poller_a_dropped_entry_is_a_dead_letter(
        tmp_path_factory: pytest.TempPathFactory, hostile: str, position: int, stray: bytes
) -> None:
    body = feed_with(hostile, position, "60", stray)
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length:"
            f" {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with hostile_server({"/feed": raw(head + body)}) as srv:
        run = poll_pass(tmp_path_factory.mktemp("poll"), srv.url("/feed"))
    assert run.result().status == "ok"
    check_page(run.titles(), [(dl.error.split(":", 1)[0], dl.error) for dl in run.letters])


# --- headers through the real client ---------------------------------------------------------

HEADER_BYTES = st.one_of(
    st.text(max_size=40).map(lambda t: t.encode("utf-8")),
    st.binary(max_size=40),
    st.sampled_from([b"\xc2\xb2", b"\xd9\xa3", b"9" * 400, b"-1", b"1.5", b'W/"x"', b""]),
).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
CHARSETS = st.one_of(st.sampled_from(["utf-8", "koi8-r", "undefined", "rot13", "utf-16", ""]),
                     st.text(alphabet=string.ascii_letters + string.digits + "-_²", max_size=12))


@pytest.fixture(scope="module")
def server() -> HostileServer:
    with hostile_server({}) as srv:
        yield srv  # type: ignore[misc]


@examples(80)
@given(status=st.sampled_from(["200 OK", "200 OK", "429 Too Many Requests",
                               "503 Service Unavailable", "304 Not Modified", "302 Found"]),
       location=st.one_of(HEADER_BYTES, LINKS.map(lambda u: u.encode("utf-8"))).map(
           lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
       retry_after=HEADER_BYTES, charset=CHARSETS,
       coding=st.lists(st.one_of(CODING, st.text(max_size=6)), max_size=4),
       length=st.one_of(st.none(), HEADER_BYTES), etag=HEADER_BYTES, modified=HEADER_BYTES)
def test_any_headers_give_a_result_and_keep_a_good_page_readable(
        server: HostileServer, status: str, location: bytes, retry_after: bytes, charset: str,
        coding: list[str], length: bytes | None, etag: bytes, modified: bytes) -> None:
    names = [c.strip().lower() for c in coding]
    decodable = all(n in ("gzip", "deflate", "br", "zstd", "identity", "") for n in names)
    assume(not any("," in c or "\r" in c or "\n" in c for c in coding))
    body = encode(feed_xml(good_items()).encode(), [n for n in names if n]) if decodable else \
        b"not encoded as said"
    headers = {
        b"Content-Type": b"application/rss+xml; charset=" + charset.encode("utf-8"),
        b"Content-Encoding": ", ".join(coding).encode("utf-8"),
        b"Retry-After": retry_after, b"ETag": etag, b"Last-Modified": modified,
        b"Location": location,
        b"Content-Length": str(len(body)).encode() if length is None else length,
    }
    head = f"HTTP/1.1 {status}\r\nConnection: close\r\n".encode()
    head += b"".join(k + b": " + v + b"\r\n" for k, v in headers.items())

    def route(wire: Wire) -> None:
        wire.send(head + b"\r\n" + (b"" if status.startswith("304") else body))

    server.routes["/feed"] = route
    server.hits.clear()
    server.heads.clear()
    source = RssSource(id="h", type="rss", url=server.url("/feed"), name="H", lang="en",
                       country="GB")
    settings_ = HttpSettings(connect_timeout_s=2, read_timeout_s=0.5, total_timeout_s=2)
    with HttpClient(settings_) as client:
        connector = RssConnector(source, Defaults(http=settings_), client, clock=lambda: NOW)
        first = connector.poll(Cursor())
        second = connector.poll(first.cursor)  # the validators it kept go back: no crash
    for result in (first, second):
        assert result.error_kind != "internal"
        assert result.retry_after_s is None or result.retry_after_s >= 0
    # A page sent as it says, in UTF-8 or with a charset that names no character set (a
    # server naming another real one is believed, as RFC 7303 says: mojibake by its word).
    if status == "200 OK" and decodable and length is None and text_codec(charset) in (
            None, "utf-8"):
        assert first.status == "ok", first
        assert [item.title for item in first.items] == list(GOOD_TITLES)
