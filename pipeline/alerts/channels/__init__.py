"""The channel registry: channel type name -> :class:`ChannelType` (config model, notifier,
doctor check).

A new channel is one module here (its config model with ``type: Literal[...]`` and its
``required`` fields, its notifier, its check) plus one entry in ``CHANNELS``. alerts.yaml's
``channels:`` are validated by dispatching on ``type`` through this registry.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import ValidatorFunctionWrapHandler, WrapValidator

from newsmon.pipeline.alerts.channels import console, smtp, telegram, webhook
from newsmon.pipeline.alerts.channels.base import (
    ChannelConfigBase,
    ChannelType,
    DeliveryError,
    Message,
    Notifier,
)

__all__ = [
    "CHANNELS",
    "ChannelConfig",
    "ChannelConfigBase",
    "ChannelType",
    "DeliveryError",
    "Message",
    "Notifier",
    "channel_type",
    "make_notifier",
]

CHANNELS: dict[str, ChannelType] = {
    entry.name: entry
    for entry in (console.CHANNEL, webhook.WEBHOOK, webhook.SLACK, smtp.CHANNEL,
                  telegram.CHANNEL)
}


def channel_type(name: str) -> ChannelType:
    """The registry entry for ``name``; ValueError naming the known types otherwise."""
    try:
        return CHANNELS[name]
    except KeyError:
        raise ValueError(f"unknown channel type {name!r} (types are: "
                         f"{', '.join(CHANNELS)})") from None


def _dispatch(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # Validates with the model the registry names for ``type``: its errors keep their keys
    # (channels.<name>.<field>), which a discriminated union would prefix with the type.
    if isinstance(value, ChannelConfigBase):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("type"), str):
        return channel_type(value["type"]).config_model.model_validate(value)
    return handler(value)


#: A channel in alerts.yaml: validated by its type's own model.
ChannelConfig = Annotated[ChannelConfigBase, WrapValidator(_dispatch)]


def make_notifier(channel: ChannelConfigBase,
                  env: Mapping[str, str] | None = None) -> Notifier:
    """The channel's notifier; its secret is read from ``env`` (default: the environment)."""
    return channel_type(channel.type).notifier(channel, os.environ if env is None else env)
