"""The HTTP client: limits, conditional GET, compression, redirects and the address guard."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from newsmon.connectors.guard import (
    AddressGuard,
    BlockedAddressError,
    FetchError,
    is_public_address,
)
from newsmon.connectors.http import USER_AGENT, HttpClient, HttpSettings, parse_retry_after
from tests.connectors.server import Reply, Request, serve

LOOPBACK = "127.0.0.1"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2a00:1450:4001:82b::200e", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata service
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:8.8.8.8", True),
        ("2002:7f00:1::", False),  # 6to4 wrapping 127.0.0.1
        ("not-an-ip", False),
    ],
)
def test_only_globally_routable_addresses_are_public(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_guard_checks_every_resolved_address() -> None:
    guard = AddressGuard(resolver=lambda host, port: ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(BlockedAddressError, match=r"10\.0\.0\.5"):
        guard.check_url("https://mixed.example/article")


def test_guard_passes_public_names_and_allows_private_when_configured() -> None:
    AddressGuard(resolver=lambda h, p: ["93.184.216.34"]).check_url("https://ok.example/a")
    AddressGuard(allow_private=True, resolver=lambda h, p: ["127.0.0.1"]).check_url(
        "http://localhost/a"
    )


def test_guard_refuses_other_schemes_and_unresolvable_names() -> None:
    guard = AddressGuard(resolver=lambda h, p: ["93.184.216.34"])
    with pytest.raises(BlockedAddressError):
        guard.check_url("file:///etc/passwd")
    with pytest.raises(BlockedAddressError):
        guard.check_url("gopher://x.example/")

    def no_such_name(host: str, port: int) -> list[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(FetchError) as info:
        AddressGuard(resolver=no_such_name).check_url("https://nxdomain.example/")
    assert info.value.kind == "dns" and info.value.hard


def test_guarded_client_never_contacts_a_loopback_address() -> None:
    with serve() as server, HttpClient(guard=AddressGuard()) as client:
        server.route("/secret", Reply(b"internal"))
        with pytest.raises(BlockedAddressError):
            client.get(server.url("/secret"))
        assert server.requests == []


def _fake_dns(table: dict[str, list[str]]) -> AddressGuard:
    """A guard for which only 127.0.0.1 counts as public, and names resolve from ``table``."""
    return AddressGuard(resolver=lambda host, port: table[host], is_allowed=lambda a: a == LOOPBACK)


def test_every_redirect_hop_is_checked() -> None:
    with serve() as server:
        server.route("/start", Reply(status=302, headers={
            "Location": f"http://internal.test:{server.port}/admin"}))
        guard = _fake_dns({"news.test": [LOOPBACK], "internal.test": ["127.0.0.2"]})
        with HttpClient(guard=guard) as client, pytest.raises(BlockedAddressError):
            client.get(f"http://news.test:{server.port}/start")
        assert [r.path for r in server.requests] == ["/start"]


def test_an_address_that_changes_after_the_check_is_caught_at_connect_time() -> None:
    answers = iter([[LOOPBACK], ["127.0.0.9"]])  # DNS rebinding: public first, then private
    guard = AddressGuard(resolver=lambda h, p: next(answers), is_allowed=lambda a: a == LOOPBACK)
    with serve() as server, HttpClient(guard=guard) as client:
        server.route("/a", Reply(b"x"))
        with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.9"):
            client.get(f"http://rebind.test:{server.port}/a")
        assert server.requests == []


def test_guarded_client_reaches_allowed_hosts_by_name() -> None:
    with serve() as server:
        server.route("/a", Reply(b"article"))
        with HttpClient(guard=_fake_dns({"news.test": [LOOPBACK]})) as client:
            response = client.get(f"http://news.test:{server.port}/a")
    assert response.status == 200 and response.content == b"article"


def test_sends_a_user_agent_naming_newsmon_and_decodes_gzip() -> None:
    body = b"<rss>" + b"x" * 50_000 + b"</rss>"
    with serve() as server, HttpClient() as client:
        server.route("/feed", Reply(body, gzip=True))
        response = client.get(server.url("/feed"))
        request = server.requests[0]
    assert response.content == body
    assert request.headers["user-agent"] == USER_AGENT and "newsmon" in USER_AGENT
    assert "gzip" in request.headers["accept-encoding"]


def test_conditional_get_sends_the_validators_and_returns_304() -> None:
    def conditional(request: Request) -> Reply:
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(status=304, headers={"ETag": '"v1"'})
        validators = {"ETag": '"v1"', "Last-Modified": "Mon, 25 Nov 2024 10:00:00 GMT"}
        return Reply(b"<rss/>", headers=validators)

    with serve() as server, HttpClient() as client:
        server.route("/feed", conditional)
        first = client.get(server.url("/feed"))
        second = client.get(server.url("/feed"), etag=first.etag, last_modified=first.last_modified)
        sent = server.requests[1].headers
    assert first.status == 200 and first.etag == '"v1"'
    assert second.not_modified and second.content == b""
    assert sent["if-modified-since"] == "Mon, 25 Nov 2024 10:00:00 GMT"


@pytest.mark.parametrize("no_length", [False, True], ids=["content-length", "streamed"])
def test_a_body_over_the_size_limit_is_refused(no_length: bool) -> None:
    settings = HttpSettings(max_bytes=100_000)
    with serve() as server, HttpClient(settings) as client:
        server.route("/big", Reply(b"x" * 300_000, no_length=no_length))
        with pytest.raises(FetchError) as info:
            client.get(server.url("/big"))
    assert info.value.kind == "too-large" and info.value.hard


def test_the_size_limit_applies_to_the_decompressed_body() -> None:
    settings = HttpSettings(max_bytes=100_000)
    with serve() as server, HttpClient(settings) as client:
        server.route("/bomb", Reply(b"\0" * 2_000_000, gzip=True))  # ~2 KB on the wire
        with pytest.raises(FetchError, match="over 100000 bytes"):
            client.get(server.url("/bomb"))


def test_redirects_are_followed_up_to_the_limit() -> None:
    with serve() as server, HttpClient(HttpSettings(max_redirects=2)) as client:
        server.route("/old", Reply(status=301, headers={"Location": "/new"}))
        server.route("/new", Reply(b"feed"))
        server.route("/loop", Reply(status=302, headers={"Location": "/loop"}))
        assert client.get(server.url("/old")).content == b"feed"
        with pytest.raises(FetchError) as info:
            client.get(server.url("/loop"))
    assert info.value.kind == "redirects"


def test_a_redirect_to_a_file_url_is_refused() -> None:
    with serve() as server, HttpClient() as client:
        server.route("/x", Reply(status=302, headers={"Location": "file:///etc/passwd"}))
        with pytest.raises(BlockedAddressError):
            client.get(server.url("/x"))


def test_a_stalled_server_times_out() -> None:
    with serve() as server, HttpClient(HttpSettings(read_timeout_s=0.2)) as client:
        server.route("/slow", Reply(b"late", delay_s=1.0))
        with pytest.raises(FetchError) as info:
            client.get(server.url("/slow"))
    assert info.value.kind == "timeout" and not info.value.hard


def test_a_closed_port_is_a_transient_connect_error(free_port: int) -> None:
    with HttpClient() as client, pytest.raises(FetchError) as info:
        client.get(f"http://127.0.0.1:{free_port}/feed")
    assert info.value.kind == "connect" and not info.value.hard


def test_http_errors_are_responses_not_exceptions() -> None:
    with serve() as server, HttpClient() as client:
        server.route("/limited", Reply(b"slow down", 429, {"Retry-After": "120"}))
        response = client.get(server.url("/limited"))
    assert response.status == 429
    assert response.retry_after_s(datetime.now(UTC)) == 120


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2024, 11, 25, 10, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30
    assert parse_retry_after("Mon, 25 Nov 2024 10:05:00 GMT", now) == 300
    assert parse_retry_after("Mon, 25 Nov 2024 09:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_file_urls_are_read_with_last_modified_for_configured_feeds(tmp_path: Path) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss/>")
    os.utime(feed, (1_700_000_000, 1_700_000_000))
    with HttpClient() as client:
        first = client.get(feed.as_uri())
        again = client.get(feed.as_uri(), last_modified=first.last_modified)
        with pytest.raises(FetchError) as info:
            client.get((tmp_path / "missing.xml").as_uri())
    assert first.content == b"<rss/>" and again.not_modified
    assert info.value.kind == "not-found"
    with HttpClient(guard=AddressGuard()) as guarded, pytest.raises(BlockedAddressError):
        guarded.get(feed.as_uri())


def test_a_permanent_redirect_says_where_the_resource_moved() -> None:
    with serve() as server, HttpClient() as client:
        server.route("/old", Reply(status=301, headers={"Location": "/new"}))
        server.route("/temp", Reply(status=302, headers={"Location": "/new"}))
        server.route("/new", Reply(b"feed"))
        assert client.get(server.url("/old")).moved_to == server.url("/new")
        assert client.get(server.url("/temp")).moved_to is None
        assert client.get(server.url("/new")).moved_to is None
