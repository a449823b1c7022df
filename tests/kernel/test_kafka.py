"""newsmon.kafka.discard_producer: how both publishers drop a producer whose sends failed."""

from __future__ import annotations

import logging

import pytest

from newsmon.kafka import discard_producer


class _Producer:
    """Stands for a kafka-python producer: only ``close`` is called."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.timeouts: list[float | None] = []

    def close(self, timeout: float | None = None) -> None:
        self.timeouts.append(timeout)
        if self.error is not None:
            raise self.error


def test_a_failed_producer_is_closed_without_waiting() -> None:
    producer = _Producer()
    discard_producer(producer)
    # Waiting would block on the very batches that failed; they are published again anyway.
    assert producer.timeouts == [0]


def test_an_error_while_closing_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    producer = _Producer(RuntimeError("socket already closed"))
    with caplog.at_level(logging.WARNING, logger="newsmon.kafka"):
        discard_producer(producer)
    assert producer.timeouts == [0]
    assert "socket already closed" in caplog.text


def test_no_producer_is_nothing_to_close() -> None:
    discard_producer(None)
