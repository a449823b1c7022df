"""The source registry: every source type has a model and a connector, and feeds.yaml knows
exactly the registered types."""

from __future__ import annotations

import typing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from newsmon.configfile import ConfigError
from newsmon.connectors.base import Defaults, SourceBase, Wiring
from newsmon.connectors.feeds import FeedsConfig, load_sources
from newsmon.connectors.http import HttpClient
from newsmon.connectors.registry import SOURCE_TYPES, _registered, connect, source_type
from newsmon.models import SourceRef

#: One valid feeds.yaml entry per registered type; a new type without one fails below.
EXAMPLES = {
    "rss": {"url": "https://example.org/feed.xml"},
    "telegram": {"channel": "example_news"},
    "gdelt": {"url": "https://example.org/gdeltv2/lastupdate.txt",
              "filter": {"themes": ["ARMEDCONFLICT"]}},
}


def entry(name: str, index: int = 0) -> dict[str, object]:
    return {"id": f"{name}-{index}", "type": name, "name": name, "lang": "en", "country": "GB",
            **EXAMPLES[name]}


def test_registered_types_are_the_types_items_may_carry() -> None:
    assert set(EXAMPLES) == set(SOURCE_TYPES)
    for name in SOURCE_TYPES:
        assert SourceRef(id="s", type=name).type == name
    # The kernel checks a name's form only: a new type needs no edit there.
    with pytest.raises(ValidationError):
        SourceRef(id="s", type="Not A Type")


def test_the_registry_refuses_an_entry_that_items_could_not_carry() -> None:
    rss = source_type("rss")
    with pytest.raises(ValueError, match="must match"):
        _registered([replace(rss, name="RSS feed")])
    with pytest.raises(ValueError, match="must match"):
        _registered([replace(rss, name="atom")])  # its model's type is Literal["rss"]
    with pytest.raises(ValueError, match="twice"):
        _registered([rss, rss])


@pytest.mark.parametrize("name", sorted(SOURCE_TYPES))
def test_every_type_has_a_model_and_a_connector(name: str) -> None:
    kind = source_type(name)
    assert kind.name == name
    assert issubclass(kind.model, SourceBase)
    # The model's ``type`` literal is its own name and no other.
    assert typing.get_args(kind.model.model_fields["type"].annotation) == (name,)
    source = kind.model.model_validate(entry(name))
    with HttpClient(Defaults().http) as http:
        wiring = Wiring(defaults=Defaults(), http=http, article_http=http,
                        clock=lambda: datetime.now(UTC), sleep=lambda _s: None)
        connector = connect(source, wiring)
        # The Connector protocol, checked by hand: it is not runtime_checkable.
        assert callable(connector.poll) and callable(connector.enrich)
        assert connector.source is source
    assert source.location.startswith("https://")
    default = kind.default_interval(Defaults())
    assert isinstance(default, int) and default > 0


def test_feeds_yaml_reads_every_registered_type(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump({"sources": [entry(name) for name in SOURCE_TYPES]}))
    config = load_sources(path)
    assert [type(s) for s in config.sources] == [t.model for t in SOURCE_TYPES.values()]
    for source in config.sources:
        assert config.interval_for(source) == max(
            SOURCE_TYPES[source.type].default_interval(config.defaults),
            config.defaults.min_interval_s)


def test_an_unregistered_type_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    bad = {**entry("rss"), "type": "mastodon"}
    path.write_text(yaml.safe_dump({"sources": [bad]}))
    with pytest.raises(ConfigError, match=r"sources\.0"):
        load_sources(path)
    with pytest.raises(KeyError, match="unknown source type 'mastodon'"):
        source_type("mastodon")


def test_interval_for_uses_the_types_default_above_the_floor() -> None:
    floor = Defaults().telegram_interval_s + 1
    config = FeedsConfig.model_validate(
        {"defaults": {"min_interval_s": floor}, "sources": [entry("telegram")]})
    assert config.interval_for(config.sources[0]) == floor
