"""Hostile fields in a Telegram preview page: post ids, dates, view counts and links out of
range or not plain ASCII, posts nested in posts, pages nested too deeply. One bad field costs
at most its post (a ``bad-post`` problem, parked as a dead letter), never the page, the
channel or the pass; a page that cannot be parsed is a soft failure that never disables the
channel. Unit triggers first, then the poller against a local server, then properties.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsmon.connectors.base import Defaults
from newsmon.connectors.feeds import FeedsConfig
from newsmon.connectors.fields import (
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_STORED_INT,
    ascii_int,
    parse_post_date,
    parse_views,
)
from newsmon.connectors.items import DEAD_LETTER_PROBLEMS
from newsmon.connectors.publisher import ListPublisher
from newsmon.connectors.records import Cursor
from newsmon.connectors.runner import Poller
from newsmon.connectors.telegram import (
    MAX_MESSAGE_ID,
    MAX_POST_HTML_CHARS,
    MAX_POSTS_PER_POLL,
    TelegramSource,
    parse_preview,
)
from newsmon.html import MAX_DEPTH
from newsmon.models import RawItem
from tests.connectors.server import LocalServer, Reply, Request, serve
from tests.connectors.tgpages import page, post

pytestmark = pytest.mark.timeout(180)

CHANNEL = "hostile_chan"
NOW = datetime(2024, 11, 25, 12, 0, tzinfo=UTC)
#: derandomized and bounded like tests/hostile/test_fuzz.py: the same examples in every run.
PROPERTY = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def with_post(channel: str, ref: str, text: str, *, views: str = "1.0K",
              date: str = "2024-11-25T10:00:00+00:00") -> str:
    """A post whose ``data-post`` is ``ref`` (tgpages.post takes an int); ``ref``, views and
    date are escaped, so the page's parser reads them back as given."""
    markup = post(channel, 1, text, views=escape(views), date=escape(date))
    return markup.replace(f'data-post="{channel}/1"', f'data-post="{escape(ref)}"', 1)


def parsed(*posts: str) -> tuple[dict[int, str], list[str]]:
    html = page(CHANNEL, list(posts)).decode()
    result = parse_preview(html, CHANNEL, "https://t.me/s/" + CHANNEL)
    assert result.is_preview and result.refused is None
    return {p.message_id: p.text for p in result.posts}, [
        f"{p.kind}: {p.message}" for p in result.problems]


# --- numbers ---------------------------------------------------------------------------------

BAD_IDS = {
    "2**63": str(2**63),
    "2**64+1": str(2**64 + 1),
    "5000 digits": "9" * 5000,  # over int()'s 4,300-digit limit
    "superscript two": "²",  # isdigit() is true, int() refuses
    "arabic-indic": "١٢٣",  # int() would read 123
    "fullwidth": "１２",
    "underscore": "1_000",
    "negative": "-5",
    "plus": "+5",
    "zero": "0",
    "exponent": "1e3",
    "decimal": "12.0",
    "empty": "",
    "nbsp": "\u00a012",
}


@pytest.mark.parametrize("number", BAD_IDS.values(), ids=BAD_IDS.keys())
def test_a_post_id_out_of_range_or_not_ascii_costs_only_its_post(number: str) -> None:
    posts, problems = parsed(post(CHANNEL, 7, "Before"),
                             with_post(CHANNEL, f"{CHANNEL}/{number}", "Poison"),
                             post(CHANNEL, 9, "After"))
    assert posts == {7: "Before", 9: "After"}
    assert len(problems) == 1 and problems[0].startswith("bad-post: data-post ")
    assert "bad-post" in DEAD_LETTER_PROBLEMS
    assert len(problems[0]) < 400  # a 5,000-digit id is quoted cut


@pytest.mark.parametrize("ref", [f"bad name/{5}", "a/b/5", "x" * 65 + "/5", "кириллица/5"])
def test_a_post_of_no_channel_username_costs_only_its_post(ref: str) -> None:
    posts, problems = parsed(post(CHANNEL, 7, "Before"), with_post(CHANNEL, ref, "Poison"))
    assert posts == {7: "Before"} and [p.split(":")[0] for p in problems] == ["bad-post"]


def test_the_largest_storable_id_is_a_post() -> None:
    posts, problems = parsed(with_post(CHANNEL, f"{CHANNEL}/{MAX_MESSAGE_ID}", "Edge"))
    assert posts == {MAX_STORED_INT: "Edge"} and problems == []


@pytest.mark.parametrize("value", [
    "0001-01-01T00:00:00+01:00",  # astimezone(UTC) overflows
    "9999-12-31T23:59:59-01:00",
    "1969-12-31T23:59:59+00:00",
    "3000-01-01T00:00:00+00:00",
    "not a date",
    "２０２４-11-25T10:00:00",
    "2024-13-01T00:00:00",
    "2024-01-01T00:00:00+24:00",
    "2" * 10_000,
])
def test_a_date_out_of_range_or_unreadable_is_ignored(value: str) -> None:
    html = page(CHANNEL, [post(CHANNEL, 7, "Dated", date=value)]).decode()
    (only,) = parse_preview(html, CHANNEL).posts
    assert only.message_id == 7 and only.text == "Dated" and only.date is None
    assert parse_post_date(value) is None


def test_a_readable_date_is_converted_to_utc() -> None:
    assert parse_post_date("2024-11-25T10:00:00+02:00") == datetime(2024, 11, 25, 8, tzinfo=UTC)
    assert parse_post_date("2024-11-25T10:00:00") == datetime(2024, 11, 25, 10, tzinfo=UTC)


@pytest.mark.parametrize("views", [
    "9" * 400,  # float() makes it inf, round() raised OverflowError
    "9e999K", "inf", "nan", "²", "١٢٣", "1.2.3K", "-5", "1_000", "1.2G", "9" * 13 + "M",
])
def test_a_views_counter_out_of_range_or_not_ascii_is_ignored(views: str) -> None:
    html = page(CHANNEL, [post(CHANNEL, 7, "Counted", views=views)]).decode()
    (only,) = parse_preview(html, CHANNEL).posts
    assert only.text == "Counted" and only.views is None
    assert parse_views(views) is None


def test_views_in_range_are_read() -> None:
    assert parse_views("999999999999M") == 999_999_999_999_000_000
    assert parse_views(" 12,7K ") == 12_700


@pytest.mark.parametrize("href", ["http://[::1", "//[", "https://[zz]/x"])
def test_a_link_that_does_not_parse_costs_only_itself(href: str) -> None:
    markup = post(CHANNEL, 7, "Linked").replace(
        "Linked</div>", f'Linked <a href="{href}">x</a> <a href="https://ok.example/a">y</a></div>')
    (only,) = parse_preview(page(CHANNEL, [markup]).decode(), CHANNEL).posts
    assert only.links == ("https://ok.example/a",)


def test_a_post_text_longer_than_telegram_allows_costs_only_its_post() -> None:
    long = post(CHANNEL, 8, "word " * (MAX_POST_HTML_CHARS // 5 + 1))
    posts, problems = parsed(post(CHANNEL, 7, "Short"), long, post(CHANNEL, 9, "After"))
    assert posts == {7: "Short", 9: "After"}
    assert [p.split(":")[0] for p in problems] == ["bad-post"] and "over" in problems[0]


def test_a_forwarded_from_name_longer_than_any_is_ignored() -> None:
    markup = post(CHANNEL, 7, "Forwarded").replace(
        '<div class="tgme_widget_message_text',
        f'<a class="tgme_widget_message_forwarded_from_name" href="https://t.me/x">{"N" * 5000}'
        '</a><div class="tgme_widget_message_text', 1)
    (only,) = parse_preview(page(CHANNEL, [markup]).decode(), CHANNEL).posts
    assert only.text == "Forwarded" and only.forwarded_from is None


@pytest.mark.parametrize("text", ["", " ", "١٢", "12abc", "99999999999999999999", "-1", "٣"])
def test_ascii_int_refuses_what_is_no_plain_number(text: str) -> None:
    assert ascii_int(text, max_digits=None, maximum=MAX_STORED_INT) is None


def test_ascii_int_reads_plain_numbers_within_bounds() -> None:
    assert ascii_int(" 0042\n") == 42
    assert ascii_int(str(MAX_STORED_INT), max_digits=None, maximum=MAX_STORED_INT) == MAX_STORED_INT
    assert ascii_int(str(MAX_STORED_INT + 1), max_digits=None, maximum=MAX_STORED_INT) is None
    assert ascii_int("0" * 1000 + "7", max_digits=None) == 7
    assert ascii_int("0" * 9 + "7") is None  # leading zeros count towards max_digits
    assert ascii_int("5", minimum=6) is None and ascii_int("70", maximum=69) is None


# --- nesting ---------------------------------------------------------------------------------


def nested(outer_id: int, inner: str, own: str, *, inner_first: bool) -> str:
    """A post with another post inside, before or after its own text."""
    own_text = f'<div class="tgme_widget_message_text js-message_text">{own}</div>' if own else ""
    parts = [inner, own_text] if inner_first else [own_text, inner]
    return (f'<div class="tgme_widget_message js-widget_message" data-post="{CHANNEL}/'
            f'{outer_id}"><div class="tgme_widget_message_bubble">{"".join(parts)}</div></div>')


@pytest.mark.parametrize("inner_first", [True, False])
def test_a_post_nested_in_another_keeps_its_text_and_the_outer_its_own(inner_first: bool) -> None:
    inner = post(CHANNEL, 11, "Inner words").replace(
        '<div class="tgme_widget_message_bubble">',
        '<div class="tgme_widget_message_bubble"><div class="tgme_widget_message_photo_wrap">'
        "</div>", 1)
    html = page(CHANNEL, [nested(10, inner, "Outer words", inner_first=inner_first)]).decode()
    posts = {p.message_id: p for p in parse_preview(html, CHANNEL).posts}
    assert posts[10].text == "Outer words" and posts[11].text == "Inner words"
    assert posts[10].media == () and posts[11].media == ("photo",)
    assert posts[10].views is None and posts[11].views == 1000  # the inner post's counter


def test_an_outer_post_without_text_does_not_take_the_inner_posts() -> None:
    html = page(CHANNEL, [nested(10, post(CHANNEL, 11, "Inner only"), "", inner_first=True)])
    posts = {p.message_id: p.text for p in parse_preview(html.decode(), CHANNEL).posts}
    assert posts == {10: "", 11: "Inner only"}


def test_a_post_nested_inside_the_text_of_another_is_not_part_of_that_text() -> None:
    inner = post(CHANNEL, 11, "Inner words")
    outer = post(CHANNEL, 10, "Outer words").replace("Outer words</div>",
                                                     f"Outer words{inner}</div>")
    posts = {p.message_id: p.text for p in parse_preview(page(CHANNEL, [outer]).decode(),
                                                          CHANNEL).posts}
    assert posts == {10: "Outer words", 11: "Inner words"}


def test_posts_nested_as_deep_as_the_guard_allows_are_read_in_linear_time() -> None:
    depth = MAX_DEPTH // 3  # two open elements per level, and room for html, body
    html = "".join(f'<div class="tgme_widget_message" data-post="{CHANNEL}/{n}"><div>'
                   f'<div class="tgme_widget_message_text js-message_text">Level {n}</div>'
                   + "x " * 200 for n in range(1, depth + 1))
    started = time.monotonic()
    result = parse_preview(html, CHANNEL)
    assert time.monotonic() - started < 5
    assert result.refused is None
    assert {p.message_id: p.text for p in result.posts} == {
        n: f"Level {n}" for n in range(1, depth + 1)}


# --- through the poller ----------------------------------------------------------------------


def tg_source(server: LocalServer) -> TelegramSource:
    return TelegramSource(id="tg-hostile", type="telegram", channel=CHANNEL,
                          base_url=server.url(""), name="Hostile", lang="en", country="GB")


def fast(**kw: object) -> Defaults:
    return Defaults.model_validate({"min_interval_s": 0, "telegram_page_delay_s": 0, **kw})


TOO_DEEP = page(CHANNEL, [post(CHANNEL, 1, "Lost"), "<div>" * (MAX_DEPTH + 10)])


def test_a_page_nested_too_deeply_is_a_soft_failure_that_never_disables(tmp_path: Path) -> None:
    with serve() as server:
        server.route(f"/s/{CHANNEL}", Reply(TOO_DEEP))
        config = FeedsConfig(defaults=fast(disable_after=3), sources=(tg_source(server),))
        with Poller(config, tmp_path / "state.sqlite", ListPublisher(),
                    rng=random.Random(1)) as poller:
            for _ in range(6):  # twice the hard failures that would disable it
                (result,) = poller.poll_once(force=True).results
                assert (result.status, result.error_kind) == ("error", "too-deep")
            health = poller.state.health("tg-hostile")
            letters = poller.state.dead_letters()
    assert not health.disabled and health.hard_failures == 0
    assert health.consecutive_failures == 6 and health.last_error_kind == "too-deep"
    assert [json.loads(dl.payload)["kind"] for dl in letters] == ["too-deep"]


def test_an_older_page_nested_too_deeply_is_parked_and_paging_moves_on(tmp_path: Path) -> None:
    newest = page(CHANNEL, [post(CHANNEL, n, f"Post {n}") for n in range(20, 25)], before=20)

    def handler(request: Request) -> Reply:
        return Reply(TOO_DEEP if "before" in request.query else newest)

    with serve() as server:
        server.route(f"/s/{CHANNEL}", handler)
        config = FeedsConfig(defaults=fast(), sources=(tg_source(server),))
        published = ListPublisher()
        with Poller(config, tmp_path / "state.sqlite", published) as poller:
            poller.state.save_cursor("tg-hostile", poller.state.cursor("tg-hostile")
                                     .model_copy(update={"last_message_id": 3}))
            (result,) = poller.poll_once(force=True).results
            cursor = poller.state.cursor("tg-hostile")
            letters = poller.state.dead_letters()
    assert result.status == "ok" and result.new_items == 5
    assert cursor.last_message_id == 24  # not stuck on the page it cannot read
    (letter,) = letters
    assert json.loads(letter.payload)["kind"] == "too-deep" and "before=20" in letter.error


def test_an_oversized_page_is_a_soft_failure(tmp_path: Path) -> None:
    with serve() as server:
        server.route(f"/s/{CHANNEL}", Reply(page(CHANNEL, [post(CHANNEL, 1, "x" * 5000)])))
        defaults = fast(disable_after=2, http={"max_bytes": 2000})
        config = FeedsConfig(defaults=defaults, sources=(tg_source(server),))
        with Poller(config, tmp_path / "state.sqlite", ListPublisher()) as poller:
            for _ in range(3):
                (result,) = poller.poll_once(force=True).results
                assert (result.status, result.error_kind) == ("error", "too-large")
            health = poller.state.health("tg-hostile")
    assert not health.disabled and health.hard_failures == 0


def test_every_hostile_field_on_one_page_costs_only_its_post(tmp_path: Path) -> None:
    """All the triggers above on one page, through the poller twice: the good posts are
    published once, every bad post is one dead letter, the cursor is the newest good id."""
    bad = [with_post(CHANNEL, f"{CHANNEL}/{number}", f"Poison {name}")
           for name, number in BAD_IDS.items()]
    good = [post(CHANNEL, 30, "Good one", views="9" * 400, date="0001-01-01T00:00:00+01:00"),
            post(CHANNEL, 31, "Good two", views="²", date="２０２４-11-25")]
    with serve() as server:
        server.route(f"/s/{CHANNEL}", Reply(page(CHANNEL, [good[0], *bad, good[1]])))
        config = FeedsConfig(defaults=fast(), sources=(tg_source(server),))
        published = ListPublisher()
        with Poller(config, tmp_path / "state.sqlite", published) as poller:
            first = poller.poll_once(force=True)
            second = poller.poll_once(force=True)
            letters = poller.state.dead_letters()
            cursor = poller.state.cursor("tg-hostile")
    assert first.ok and second.ok and first.new_items == 2 and second.new_items == 0
    assert [i.title for i in published.items] == ["Good one", "Good two"]
    assert len(letters) == len(BAD_IDS)
    assert all(dl.error.startswith("bad-post: data-post ") for dl in letters)
    assert cursor.last_message_id == 31


# --- memory at the size limit ----------------------------------------------------------------

#: What a poll pass may use at most, whatever a page at the size limit holds (issue 12).
MAX_RSS_MB = 300
ROOT = Path(__file__).resolve().parents[2]


def page_at_the_limit(kind: str, limit: int) -> bytes:
    """A preview page of about ``limit`` bytes built to cost memory in one way."""
    room = limit - 4000
    if kind == "one-huge-post":
        return page(CHANNEL, [post(CHANNEL, 1, "Big " * (room // 4)), post(CHANNEL, 2, "ok")])
    if kind in ("tiny-posts", "long-posts"):
        text = "x " * (200 if kind == "tiny-posts" else 33_000)
        size = len(post(CHANNEL, 10**6, text)) + 16
        return page(CHANNEL, [post(CHANNEL, n, f"{n} {text}") for n in range(1, room // size)])
    if kind.startswith("tiny-posts-before-"):  # one of the pages of a channel of such pages
        text = "x " * 200
        per_page = room // (len(post(CHANNEL, 10**6, text)) + 16)
        end = int(kind.rpartition("-")[2])
        ids = range(max(1, end - per_page), end)
        return page(CHANNEL, [post(CHANNEL, n, f"{n} {text}") for n in ids], before=ids[0])
    if kind == "nested-posts":
        levels = 160
        words = "w " * ((room // levels - 200) // 2)
        return page(CHANNEL, ["".join(
            f'<div class="tgme_widget_message" data-post="{CHANNEL}/{n}"><div><div class='
            f'"tgme_widget_message_text js-message_text">{words}</div>'
            for n in range(1, levels + 1))])
    if kind == "huge-attribute":
        return page(CHANNEL, [post(CHANNEL, 1, "ok"), with_post(CHANNEL, "9" * room, "bad")])
    assert kind == "too-deep"
    return page(CHANNEL, ["<div>" * (room // 5)])


class Counter:
    """A publisher that keeps nothing (Kafka keeps the items, not the poller's memory)."""

    def publish(self, items: Sequence[RawItem]) -> None:
        assert all(RawItem.from_json(item.to_json()) == item for item in items)

    def close(self) -> None:
        """Nothing held."""


def poll_at_the_limit(kind: str) -> None:
    """Run in a fresh process by the test below: one poll pass of a channel whose page is
    ``kind`` at the default size limit; prints the figures as JSON."""
    import tempfile

    limit = Defaults().http.max_bytes

    def serve_page(request: Request) -> Reply:
        # Built on request, so that the server holds no page between requests.
        if kind == "paging" and "before" not in request.query:
            # The newest page: just under the post limit, so the poll pages on.
            ids = range(10**6 - MAX_POSTS_PER_POLL + 1, 10**6)
            return Reply(page(CHANNEL, [post(CHANNEL, n, f"Post {n}") for n in ids],
                              before=ids[0]))
        before = request.query.get("before", "")
        body = page_at_the_limit(kind if kind != "paging" else f"tiny-posts-before-{before}",
                                 limit)
        assert 0.95 * limit < len(body) <= limit, len(body)
        return Reply(body)

    with serve() as server, tempfile.TemporaryDirectory() as tmp:
        server.route(f"/s/{CHANNEL}", serve_page)
        config = FeedsConfig(defaults=fast(), sources=(tg_source(server),))
        started = time.monotonic()
        with Poller(config, Path(tmp) / "state.sqlite", Counter()) as poller:
            if kind == "paging":  # a cursor far back: the poll pages back for more
                poller.state.save_cursor("tg-hostile", Cursor(last_message_id=1))
            (result,) = poller.poll_once(force=True).results
            letters = len(poller.state.dead_letters())
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork and exec, so a
    # process started from a large pytest would report pytest's size.
    status = Path("/proc/self/status").read_text()
    peak_kb = int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
    print(json.dumps({"status": result.status, "error_kind": result.error_kind,
                      "items": result.new_items, "dead_letters": letters,
                      "seconds": round(time.monotonic() - started, 2),
                      "max_rss_mb": peak_kb // 1024}))


@pytest.mark.parametrize(("kind", "expected"), [
    ("one-huge-post", ("ok", 1, 1)), ("tiny-posts", ("ok", 9_545, 0)),
    ("long-posts", ("ok", 156, 0)), ("nested-posts", ("ok", 160, 0)),
    ("huge-attribute", ("ok", 1, 1)), ("too-deep", ("error", 0, 1)),
    # 999 posts on the newest page, then a page at the limit: the post limit stops the paging
    ("paging", ("ok", 999 + 9_546, 0)),
])
def test_a_poll_pass_over_a_page_at_the_size_limit_stays_under_300_mb(
        kind: str, expected: tuple[str, int, int]) -> None:
    """Peak memory (max RSS) of a whole process that imports newsmon, serves the page and
    polls it once; figures in docs/reliability.md."""
    proc = subprocess.run([sys.executable, "-c", "from tests.hostile.test_telegram_fields"
                           f" import poll_at_the_limit; poll_at_the_limit({kind!r})"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.splitlines()[-1])
    assert (figures["status"], figures["items"], figures["dead_letters"]) == expected, figures
    assert figures["max_rss_mb"] < MAX_RSS_MB, figures


# --- properties ------------------------------------------------------------------------------

GOOD_IDS = st.integers(1, MAX_MESSAGE_ID).map(str)
HOSTILE_IDS = st.one_of(
    st.integers(MAX_MESSAGE_ID + 1, 2**200).map(str),
    st.integers(-(2**70), 0).map(str),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=30),
    st.text(max_size=30),
    st.sampled_from(list(BAD_IDS.values())),
)
DATES = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "", "x"]),
    st.text(max_size=40),
)
VIEWS = st.one_of(st.from_regex(r"[0-9]{1,20}([.,][0-9]{1,4})?[KkMmGg]?", fullmatch=True),
                  st.text(max_size=20), st.sampled_from(["9" * 400, "9e999K", "²"]))
WORDS = st.from_regex(r"[A-Za-z][a-z]{2,12}", fullmatch=True)
ASCII_SPACE = " \t\r\n\f\v"


def is_good_id(number: str) -> bool:
    """The oracle, written apart from the parser: plain ASCII digits, in 1..MAX_MESSAGE_ID."""
    return re.fullmatch(r"[0-9]+", number, re.ASCII) is not None and (
        1 <= int(number.lstrip("0") or "0") <= MAX_MESSAGE_ID if len(number) < 4000 else False)


@PROPERTY
@given(st.lists(st.tuples(st.one_of(GOOD_IDS, HOSTILE_IDS), DATES, VIEWS, WORDS),
                min_size=1, max_size=12))
def test_hostile_post_fields_cost_at_most_their_post(
        fields: list[tuple[str, str, str, str]]) -> None:
    markup = [with_post(CHANNEL, f"{CHANNEL}/{number}", f"Text {n} {word}", views=views,
                        date=date)
              for n, (number, date, views, word) in enumerate(fields)]
    html = page(CHANNEL, markup).decode()
    result = parse_preview(html, CHANNEL)  # never raises
    expected = [(int(number), f"Text {n} {word}")
                for n, (number, _, _, word) in enumerate(fields)
                if is_good_id(number.strip(ASCII_SPACE))]
    assert [(p.message_id, p.text) for p in result.posts] == expected  # the good posts survive
    assert len(result.posts) + len(result.problems) == len(fields)  # nothing vanishes
    for p in result.posts:
        assert p.date is None or EARLIEST_DATE <= p.date < LATEST_DATE
        assert p.views is None or 0 <= p.views <= MAX_STORED_INT
    for problem in result.problems:
        assert problem.kind in DEAD_LETTER_PROBLEMS
        assert problem.message.startswith("data-post ") and len(problem.message) < 400


@st.composite
def post_trees(draw: st.DrawFn) -> tuple[str, dict[int, str]]:
    """Posts nested at random in one another (inside the text or beside it); each has its
    own words. Returns the markup and message id -> its own text."""
    texts: dict[int, str] = {}
    counter = iter(range(1, 1000))

    def build(depth: int) -> str:
        message_id = next(counter)
        own = f"Own {message_id} {draw(WORDS)}"
        texts[message_id] = own
        children = "".join(build(depth + 1) for _ in range(
            draw(st.integers(0, 2 if depth < 4 else 0))))
        where = draw(st.sampled_from(["before", "after", "inside"]))
        text = (f'<div class="tgme_widget_message_text js-message_text">{own}'
                f"{children if where == 'inside' else ''}</div>")
        body = {"before": children + text, "after": text + children, "inside": text}[where]
        return (f'<div class="tgme_widget_message" data-post="{CHANNEL}/{message_id}">'
                f"<div>{body}</div></div>")

    roots = "".join(build(0) for _ in range(draw(st.integers(1, 3))))
    return roots, texts


@PROPERTY
@given(post_trees())
def test_nested_posts_each_keep_exactly_their_own_text(tree: tuple[str, dict[int, str]]) -> None:
    markup, texts = tree
    result = parse_preview(page(CHANNEL, [markup]).decode(), CHANNEL)
    assert result.problems == ()
    assert {p.message_id: p.text for p in result.posts} == texts
