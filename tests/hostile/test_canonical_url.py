"""canonical_url keeps an IPv6 host a URL (issue 12, defect 8b).

The pipeline's copy dropped the brackets (``http://[2001:db8::1]:8080/y`` became
``http://2001:db8::1:8080/y``, a different URL whose port is part of the address), and a port
that does not parse raised out of normalize and cost the item. The connectors' and the
pipeline's copies are one function now (newsmon/urls.py).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from newsmon.urls import canonical_url

CASES = [
    ("http://[2001:db8::1]:8080/y", "http://[2001:db8::1]:8080/y"),
    ("http://[2001:db8::1]/y", "http://[2001:db8::1]/y"),
    ("http://[2001:db8::1]", "http://[2001:db8::1]/"),
    ("HTTP://[2001:DB8::ABCD]:8080/Path?q=1", "http://[2001:db8::abcd]:8080/Path?q=1"),
    ("http://[2001:db8::1]:80/y", "http://[2001:db8::1]/y"),
    ("https://[2001:db8::1]:443/y#frag", "https://[2001:db8::1]/y"),
    ("https://[2001:db8::1]:80/y", "https://[2001:db8::1]:80/y"),  # 80 is not https's default
    ("http://[::1]:8080/", "http://[::1]:8080/"),
    ("http://[::ffff:192.0.2.1]:8080/a", "http://[::ffff:192.0.2.1]:8080/a"),
    ("http://[fe80::1%25eth0]:8080/a", "http://[fe80::1%25eth0]:8080/a"),
    ("  http://[2001:db8::1]:8080/y?utm_source=feed  ", "http://[2001:db8::1]:8080/y"),
]


@pytest.mark.parametrize(("url", "expected"), CASES)
def test_ipv6_hosts_keep_their_brackets(url: str, expected: str) -> None:
    result = canonical_url(url)
    assert result == expected
    parts = urlsplit(result)  # still a URL, with the same host and port
    assert parts.hostname == urlsplit(url.strip()).hostname
    assert parts.port == (None if expected.count("]:") == 0 else urlsplit(url.strip()).port)
    assert canonical_url(result) == result  # canonical: a second pass changes nothing


@pytest.mark.parametrize("url", ["http://[::1", "http://[zz::1]/", "http://h:99999/",
                                 "http://h:port/", "http://h:\u0669/"])
def test_a_url_that_does_not_parse_is_kept_not_raised(url: str) -> None:
    assert canonical_url(f" {url} ") == url
