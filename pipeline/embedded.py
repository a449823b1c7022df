"""The embedded default's hand-off between connectors and pipeline: a local spool file.

It plays Kafka's part on one machine: ``publish`` returns only once the items are on disk
(so the poller may mark them seen), and the pipeline removes a spool only after every item in
it was written. A crash at any point leaves the items in the spool for the next run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from newsmon.models import RawItem


class SpoolPublisher:
    """A connector publisher that appends items to ``spool.jsonl`` and fsyncs."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.path = state_dir / "spool.jsonl"
        self._lock = threading.Lock()

    def publish(self, items: Sequence[RawItem]) -> None:
        if not items:
            return
        data = b"".join(item.to_json() + b"\n" for item in items)
        with self._lock, self.path.open("ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

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
