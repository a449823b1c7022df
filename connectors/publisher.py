"""Where polled items go: Kafka in production, a list in the embedded default and in tests.

The contract every publisher keeps: ``publish(items)`` returns only when every item was
acknowledged, and raises :class:`PublishError` otherwise. The poller marks items seen only after
``publish`` returned, so a failure means "publish these again later", never "lost".
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from newsmon.config import KafkaSettings
from newsmon.kafka import discard_producer, unavailable
from newsmon.models import RawItem

log = logging.getLogger(__name__)


class PublishError(Exception):
    """Some items were not acknowledged; none of the batch may be taken as delivered."""


class Publisher(Protocol):
    def publish(self, items: Sequence[RawItem]) -> None: ...

    def close(self) -> None: ...


class ListPublisher:
    """Collects items in memory; with ``sink`` it hands each batch straight on (the embedded
    default passes them to the pipeline in the same process)."""

    def __init__(self, sink: Callable[[Sequence[RawItem]], None] | None = None) -> None:
        self.items: list[RawItem] = []
        self._sink = sink
        self._lock = threading.Lock()

    def publish(self, items: Sequence[RawItem]) -> None:
        if self._sink is not None:
            self._sink(items)
        with self._lock:
            self.items.extend(items)

    def close(self) -> None:
        """Nothing to release."""


class KafkaPublisher:
    """kafka-python producer with ``acks=all``; key = source id, value = ``RawItem.to_json()``.

    The producer is created on first use and again after a failure to create it, so a poller
    started while Kafka is down keeps polling (and retrying the publish) instead of crashing.
    """

    def __init__(self, settings: KafkaSettings, *, topic: str | None = None) -> None:
        self.settings = settings
        self.topic = topic or settings.raw_topic
        self._producer: Any = None
        self._lock = threading.Lock()

    def _config(self) -> dict[str, Any]:
        s = self.settings
        timeout = s.request_timeout_ms
        config: dict[str, Any] = {
            **s.client_options(),
            "client_id": "newsmon-poller",
            "acks": "all",
            # Idempotence makes the producer's own retries safe (no duplicate on a retried
            # send); it also keeps the items of one key in order with several in flight.
            "enable_idempotence": True,
            "retries": 5,
            # send() blocks while there is no metadata (broker down); bounded by the same
            # timeout so a down broker costs one timeout per poll, not forever.
            "max_block_ms": timeout,
            "linger_ms": 5,
        }
        return config

    def _get_producer(self) -> Any:
        # Imported here: the embedded default and the tests of other modules need no Kafka.
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        if self._producer is None:
            try:
                self._producer = KafkaProducer(**self._config())
            # kafka-python lets a failed TLS handshake through as an ssl error
            except (KafkaError, ssl.SSLError) as exc:

                raise PublishError(
                    "cannot connect to " + unavailable(self.settings, exc, "Kafka")
                ) from exc
        return self._producer

    def publish(self, items: Sequence[RawItem]) -> None:
        if not items:
            return
        from kafka.errors import KafkaError

        with self._lock:
            producer = self._get_producer()
            futures = []
            try:
                for item in items:
                    futures.append(
                        producer.send(
                            self.topic, key=item.source.id.encode("utf-8"), value=item.to_json()
                        )
                    )
                producer.flush(timeout=self.settings.request_timeout_ms / 1000 * 2)
            except KafkaError as exc:

                self._reset()
                raise PublishError(
                    f"{self.topic}: {len(items)} items not delivered: "
                    + unavailable(self.settings, exc, "Kafka")
                ) from exc
            failed = [f for f in futures if not (f.is_done and f.succeeded())]
            if failed or len(futures) != len(items):
                first = next((f.exception for f in failed if f.is_done), None)
                self._reset()
                raise PublishError(
                    f"{self.topic}: {len(failed)} of {len(items)} items not acknowledged"
                    f" (first error: {first!r})"
                )
        log.debug(
            "source %s: published %s items to %s", items[0].source.id, len(items), self.topic
        )

    def _reset(self) -> None:
        producer, self._producer = self._producer, None
        discard_producer(producer)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(timeout=self.settings.request_timeout_ms / 1000)
                self._producer.close()
                self._producer = None


def append_items(path: Path, items: Sequence[RawItem], lock: threading.Lock) -> None:
    """Append ``items`` to a JSON-lines file, one item per line, and fsync: the one writer of
    the archive and the spool (their readers: :func:`read_archive`, the pipeline's backfill).
    Returns only once the lines are on disk; raises OSError."""
    data = b"".join(item.to_json() + b"\n" for item in items)
    with lock, path.open("ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class ArchivingPublisher:
    """Publishes through ``inner``, then appends every published item to a JSON-lines file
    (the pipeline's backfill mode reads it). Written after the inner publish succeeded, so the
    archive holds only delivered items; a crash in between may repeat a line, which the
    content-derived ids make harmless."""

    def __init__(self, inner: Publisher, path: Path) -> None:
        self.inner = inner
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def publish(self, items: Sequence[RawItem]) -> None:
        self.inner.publish(items)
        if not items:
            return
        try:
            append_items(self.path, items, self._lock)
        except OSError as exc:
            # The items are in Kafka but not in the archive: not marking them seen means they
            # are published (and archived) again next time, a duplicate the ids make harmless.
            raise PublishError(f"cannot append to the archive {self.path}: {exc}") from exc

    def close(self) -> None:
        self.inner.close()


class SpoolPublisher:
    """The embedded default's hand-off between connectors and pipeline: a local spool file
    (``<state_dir>/spool.jsonl``) that plays Kafka's part on one machine. ``publish`` returns
    only once the items are on disk (so the poller may mark them seen), and the pipeline
    removes a claimed spool only after every item in it was written. A crash at any point
    leaves the items in the spool for the next run."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "spool.jsonl"
        self._lock = threading.Lock()

    def publish(self, items: Sequence[RawItem]) -> None:
        if items:
            append_items(self.path, items, self._lock)

    def close(self) -> None:
        """Nothing held open between calls."""

    def claim(self) -> Path | None:
        """Move the spool aside for processing; a claim left by a crashed run comes first."""
        claimed = self.path.with_suffix(".processing")
        if claimed.exists():
            return claimed
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        with self._lock:
            self.path.rename(claimed)
        return claimed

    @staticmethod
    def done(claimed: Path) -> None:
        """Call only after the pipeline wrote everything in ``claimed``."""
        claimed.unlink(missing_ok=True)


def read_archive(path: Path) -> list[RawItem]:
    """The items of an archive file in order; lines that do not parse raise ValueError with
    the line number (an archive is written only by ArchivingPublisher)."""
    items = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                items.append(RawItem.from_json(line))
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
    return items


__all__ = [
    "ArchivingPublisher",
    "KafkaPublisher",
    "ListPublisher",
    "PublishError",
    "Publisher",
    "SpoolPublisher",
    "append_items",
    "read_archive",
]
