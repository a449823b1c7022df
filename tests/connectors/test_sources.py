"""feeds.yaml: typed sources, errors that name the file and key, and the shipped starter list."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from newsmon.configfile import ConfigError
from newsmon.connectors.feeds import FeedsConfig, load_sources
from newsmon.connectors.rss import RssSource
from newsmon.connectors.telegram import TelegramSource
from newsmon.models import SourceKind

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


RSS = {"id": "bbc-world", "type": "rss", "url": "https://feeds.bbci.co.uk/news/world/rss.xml",
       "name": "BBC World", "lang": "en", "country": "gb"}
TG = {"id": "tg-example", "type": "telegram", "channel": "@example_news", "name": "Example",
      "lang": "uk", "country": "UA"}


def test_sources_load_as_typed_models(tmp_path: Path) -> None:
    config = load_sources(write(tmp_path, {"defaults": {"interval_s": 600}, "sources": [RSS, TG]}))
    rss, tg = config.sources
    assert isinstance(rss, RssSource) and isinstance(tg, TelegramSource)
    assert rss.country == "GB" and tg.channel == "example_news"
    assert tg.location == "https://t.me/s/example_news"
    assert config.interval_for(rss) == 600 and config.interval_for(tg) == 300
    assert rss.ref().model_dump() == {"id": "bbc-world", "type": "rss", "name": "BBC World",
                                      "lang": "en", "country": "GB",
                                      "kind": None, "owner": ""}


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"id": "BBC World"}, "sources.0.rss.id"),
        ({"lang": "English"}, "sources.0.rss.lang"),
        ({"country": "Britain"}, "sources.0.rss.country"),
        ({"url": "ftp://x.example/feed"}, "sources.0.rss.url"),
        ({"colour": "red"}, "sources.0.rss.colour"),
        ({"type": "fax"}, "sources.0"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, change: dict[str, str], key: str) -> None:
    path = write(tmp_path, {"sources": [{**RSS, **change}]})
    with pytest.raises(ConfigError) as info:
        load_sources(path)
    assert str(info.value).startswith(f"{path}: {key}")


def test_ids_are_unique(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\.1\.id: duplicate id 'bbc-world'"):
        load_sources(write(tmp_path, {"sources": [RSS, {**RSS, "url": "https://x.example/f"}]}))


def test_no_source_is_polled_more_often_than_the_politeness_floor(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\.0\.interval_s: 10 is below"):
        load_sources(write(tmp_path, {"sources": [{**TG, "interval_s": 10}]}))


def test_relative_file_urls_resolve_against_the_feeds_file(tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    config = load_sources(write(tmp_path, {"sources": [{**RSS, "url": "file:feeds/a.xml"}]}))
    assert config.sources[0].url == (tmp_path / "feeds" / "a.xml").as_uri()  # type: ignore[union-attr]


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_sources(tmp_path / "nope.yaml")


def test_the_shipped_starter_list() -> None:
    config = load_sources(ROOT / "config" / "feeds.yaml")
    kinds = Counter(s.type for s in config.sources)
    assert kinds["rss"] >= 40 and kinds["telegram"] >= 15
    languages = {s.lang for s in config.sources}
    assert {"en", "de", "fr", "ru", "uk", "pl", "it", "es"} <= languages
    assert all(s.lang and s.country for s in config.sources)
    assert all(
        s.url.startswith("https://") or s.url.startswith("http://")
        for s in config.sources if isinstance(s, RssSource)
    )
    # across the spectrum: every kind, and every source labelled
    assert set(SourceKind) == {s.kind for s in config.sources}
    assert [s.id for s in config.sources if s.unlabelled] == []
    state_media_countries = {s.country for s in config.sources
                             if s.kind is SourceKind.STATE_AFFILIATED}
    assert {"RU", "UA"} <= state_media_countries  # both sides
    # one owner for one government's outlets: they must not corroborate each other
    assert {s.owner for s in config.sources if s.country == "RU"
            and s.kind is SourceKind.STATE_AFFILIATED} == {"Russian government"}


def test_the_demo_sources_are_labelled() -> None:
    config = load_sources(ROOT / "config" / "demo" / "feeds.yaml")
    assert config.sources and [s.id for s in config.sources if s.unlabelled] == []


def test_labels_reach_the_item_source() -> None:
    source = RssSource.model_validate(
        {**RSS, "kind": "public_broadcaster", "owner": "  BBC \n", "country": "gb"})
    assert source.ref().model_dump(include={"country", "kind", "owner"}) == {
        "country": "GB", "kind": SourceKind.PUBLIC_BROADCASTER, "owner": "BBC"}
    bare = RssSource.model_validate(RSS)
    assert bare.kind is None and bare.unlabelled == ["kind", "owner"]


@pytest.mark.parametrize(("field", "value", "says"), [
    ("country", "XX", "not an ISO 3166-1 alpha-2"),
    ("country", "EU", "not an ISO 3166-1 alpha-2"),
    ("country", "GBR", "ISO 3166-1 alpha-2"),
    ("kind", "state-media", "use state_affiliated"),
    ("kind", "broadcaster", "use public_broadcaster or commercial"),
    ("kind", "tabloid", "wire"),
])
def test_bad_labels_are_refused_with_what_to_write(field: str, value: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        RssSource.model_validate({**RSS, field: value})


def test_an_empty_config_is_valid() -> None:
    assert FeedsConfig().sources == ()


def test_each_cross_source_problem_is_its_own_line(tmp_path: Path) -> None:
    path = write(tmp_path, {"sources": [RSS, {**RSS, "url": "https://x.example/f"},
                                        {**TG, "interval_s": 5}]})
    with pytest.raises(ConfigError) as info:
        load_sources(path)
    assert info.value.problems == [
        f"{path}: sources.1.id: duplicate id 'bbc-world' (first at sources.0)",
        f"{path}: sources.2.interval_s: 5 is below defaults.min_interval_s (60)",
    ]


def test_models_built_in_code_are_checked_too() -> None:
    source = RssSource.model_validate(RSS)
    with pytest.raises(ValueError, match="duplicate id"):
        FeedsConfig(sources=(source, source))


@pytest.mark.parametrize(
    ("model", "change", "message"),
    [
        (RssSource, {"id": "BBC World"}, "must be kebab-case"),
        (RssSource, {"lang": "English"}, "must be an ISO 639-1 code"),
        (RssSource, {"country": "Britain"}, "must be an ISO 3166-1 alpha-2 code"),
        (TelegramSource, {"type": "telegram", "channel": "@no spaces"},
         "must be a public channel username"),
    ],
)
def test_pattern_fields_say_what_they_must_be(
    model: type[RssSource] | type[TelegramSource], change: dict[str, str], message: str
) -> None:
    base = {k: v for k, v in RSS.items() if k not in ("type", "url") or model is RssSource}
    with pytest.raises(ValueError, match=message):
        model.model_validate({**base, **change})


def test_country_and_channel_are_normalized() -> None:
    assert RssSource.model_validate({**RSS, "country": "gb"}).country == "GB"
    telegram = {k: v for k, v in RSS.items() if k != "url"}
    source = TelegramSource.model_validate({**telegram, "type": "telegram", "channel": "@abc_de"})
    assert source.channel == "abc_de"
