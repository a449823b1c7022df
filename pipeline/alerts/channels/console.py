"""The console channel: prints alerts (the embedded default's channel; handy under cron)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Literal, TextIO

from newsmon.pipeline.alerts.channels.base import ChannelConfigBase, ChannelType, Message


class ConsoleChannel(ChannelConfigBase):
    type: Literal["console"] = "console"


class ConsoleNotifier:
    def __init__(self, channel: ConsoleChannel, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, message: Message) -> None:
        stream = self.stream or sys.stdout
        print(message.text, file=stream, flush=True)


def _notifier(channel: ConsoleChannel, env: Mapping[str, str]) -> ConsoleNotifier:
    return ConsoleNotifier(channel)


def check(channel: ConsoleChannel, timeout_s: float) -> tuple[bool, str]:
    return True, "console (standard output)"


CHANNEL = ChannelType("console", ConsoleChannel, _notifier, check)
