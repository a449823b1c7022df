"""The channel registry, walked: every channel type validates its own config (required fields
named, keys kept as channels.<name>.<field>), has a doctor check that reports an endpoint that
is down, and a delivery test against a real receiver."""

from __future__ import annotations

import socket
import typing
from pathlib import Path

import pytest

from newsmon.configfile import ConfigError, validate
from newsmon.pipeline.alerts.channels import CHANNELS, ChannelType, channel_type, make_notifier
from newsmon.pipeline.alerts.config import AlertsConfig

TESTS = Path(__file__).resolve().parent

#: A config of each type that validates, pointing at a port nothing listens on.
DOWN = "http://127.0.0.1:{port}/hook"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def complete(entry: ChannelType, port: int) -> dict[str, object]:
    """The smallest valid config of ``entry``: its required fields filled in."""
    values: dict[str, object] = {"url": DOWN.format(port=port), "host": "127.0.0.1",
                                 "port": port, "sender": "n@example.org",
                                 "to": ["d@example.org"], "chat_id": "@newsdesk",
                                 "secret_env": "NEWSMON_TEST_TOKEN", "tls": "none"}
    fields = entry.config_model.model_fields
    return {"type": entry.name, **{k: v for k, v in values.items() if k in fields}}


ENTRIES = sorted(CHANNELS.values(), key=lambda e: e.name)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_the_model_is_the_type_it_is_registered_under(entry: ChannelType) -> None:
    literal = typing.get_type_hints(entry.config_model)["type"]
    assert typing.get_args(literal) == (entry.name,)
    assert channel_type(entry.name) is entry


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_alerts_yaml_validates_through_the_registry(entry: ChannelType) -> None:
    config = validate(AlertsConfig, {"channels": {"x": complete(entry, 9)}}, "alerts.yaml")
    assert type(config.channels["x"]) is entry.config_model
    for missing in entry.config_model.required:
        data = {k: v for k, v in complete(entry, 9).items() if k != missing}
        with pytest.raises(ConfigError, match=rf"alerts.yaml: channels.x: a {entry.name} "
                                              rf"channel needs {missing}"):
            validate(AlertsConfig, {"channels": {"x": data}}, "alerts.yaml")
    # A field of another channel type is refused, not silently ignored.
    with pytest.raises(ConfigError, match=r"channels\.x\.no_such_field"):
        validate(AlertsConfig, {"channels": {"x": {**complete(entry, 9), "no_such_field": 1}}},
                 "alerts.yaml")


def test_an_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"channels.x: unknown channel type 'pager' "
                                          r"\(types are: console, webhook"):
        validate(AlertsConfig, {"channels": {"x": {"type": "pager"}}}, "alerts.yaml")


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_the_doctor_check_reports_a_channel_that_is_down(
    entry: ChannelType, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSMON_TEST_TOKEN", "token")
    port = closed_port()
    config = entry.config_model.model_validate(complete(entry, port))
    make_notifier(config)  # buildable: what the doctor checks first
    ok, message = entry.check(config, 2.0)
    if entry.name == "console":
        assert ok and "standard output" in message
    elif entry.name == "telegram":
        assert not ok and f"127.0.0.1:{port}" in message and "not reachable" in message
    else:
        assert not ok and str(port) in message and "not reachable" in message


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_every_channel_type_has_a_delivery_test(entry: ChannelType) -> None:
    model = entry.config_model.__name__
    texts = [p.read_text(encoding="utf-8") for p in TESTS.glob("test_*.py")
             if p.name != Path(__file__).name]
    assert any(f"{model}(" in text for text in texts), (
        f"no test under {TESTS} delivers through a {model}")
