"""The one canonical_url (newsmon/urls.py), merged from the connectors' copy and the
pipeline's: these pin where the two disagreed, so neither half's answer drifts again."""

from __future__ import annotations

import pytest

from newsmon.urls import canonical_url, redacted_url

#: Tracking parameters only the connectors' copy removed, and only the pipeline's: the merged
#: list is their union, so every one of them goes.
ONLY_CONNECTORS = ["wt.mc_id", "ns_source", "ns_mchannel", "ns_campaign", "at_custom1", "dclid"]
ONLY_PIPELINE = ["ref", "ref_src", "ito", "smid", "cid", "s_cid", "icid", "rss", "from", "utm",
                 "_gl", "pk_campaign", "mtm_source"]


@pytest.mark.parametrize("name", ONLY_CONNECTORS + ONLY_PIPELINE)
def test_the_union_of_both_tracking_lists_is_removed(name: str) -> None:
    url = f"https://news.example/a?id=7&{name}=x"
    assert canonical_url(url) == "https://news.example/a?id=7"
    assert canonical_url(f"https://news.example/a?{name.upper()}=x") == "https://news.example/a"


def test_parameters_that_only_look_like_tracking_are_kept() -> None:
    url = "https://news.example/a?page=2&refresh=1&utmost=3&cidade=rio"
    assert canonical_url(url) == url


@pytest.mark.parametrize("url", ["ftp://Files.Example/X?utm_source=y", "mailto:Desk@News.Example",
                                 "file:///srv/Feed.xml", "urn:isbn:0451450523"])
def test_only_http_urls_are_rewritten(url: str) -> None:
    # The pipeline's copy lower-cased any URL with a host (ftp://files.example/...); the
    # connectors' left everything but http(s) alone, which the merged one does.
    assert canonical_url(f"  {url} ") == url


def test_redacted_url_shows_no_credentials_path_or_query() -> None:
    assert redacted_url("https://user:secret@es.example:9200/proxy/path?token=t") == (
        "https://es.example:9200")
    assert redacted_url("http://[2001:db8::1]:8080/hook/SECRET") == "http://[2001:db8::1]:8080"
    assert redacted_url("https://hooks.example/services/T000/B000/XXXX") == "https://hooks.example"
