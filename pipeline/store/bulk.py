"""The bulk core every store shares: chunked writes, per-document retries, and the errors.

Errors are plain one-message exceptions so they pickle: a Beam worker raising one hands it
back to the launcher intact.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


class StoreUnavailable(RuntimeError):
    """The search server could not be reached or answered with a server error.

    Also: it refused our credentials (HTTP 401/403) or its TLS certificate is not trusted.
    Both are broken infrastructure, not bad data: the run fails and nothing is committed. The
    message says what to fix and never carries a secret.
    """



class StoreSetupError(RuntimeError):
    """The server holds something ``setup`` must not silently change (an old index layout)."""


@dataclass(frozen=True)
class BulkFailure:
    doc_id: str
    status: int
    error: str


@dataclass(frozen=True)
class BulkAction:
    doc_id: str
    index: str
    doc: Mapping[str, Any]


@dataclass(frozen=True)
class ItemResult:
    """One document's outcome in a bulk response (status 2xx: written)."""

    doc_id: str
    status: int
    error: str = ""


#: Per-document statuses worth retrying: the server is busy or a shard is briefly missing.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


def backoff_s(attempt: int, initial_s: float, max_s: float) -> float:
    """Capped exponential backoff before retry number ``attempt`` (0-based)."""
    return float(min(max_s, initial_s * (2**attempt)))


def bulk_with_retry(
    send: Callable[[Sequence[BulkAction]], Sequence[ItemResult]],
    actions: Sequence[BulkAction],
    *,
    chunk_size: int,
    max_retries: int,
    initial_backoff_s: float = 0.5,
    max_backoff_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[BulkFailure]:
    """Send ``actions`` in chunks; retry only the documents that failed transiently.

    Rejected documents (mapping errors and other 4xx) come back as failures for the caller to
    dead-letter. Documents still failing transiently after ``max_retries`` retries raise
    :class:`StoreUnavailable`: the server is in trouble, not the data, so the run must fail
    and be retried rather than park good documents. ``send`` raises StoreUnavailable itself
    when the connection is lost.
    """
    failures: list[BulkFailure] = []
    for start in range(0, len(actions), chunk_size):
        todo = list(actions[start:start + chunk_size])
        attempt = 0
        while todo:
            by_id = {a.doc_id: a for a in todo}
            retry: list[BulkAction] = []
            for result in send(todo):
                if 200 <= result.status < 300:
                    continue
                if result.status in TRANSIENT_STATUSES:
                    retry.append(by_id[result.doc_id])
                else:
                    failures.append(BulkFailure(result.doc_id, result.status, result.error))
            if retry and attempt >= max_retries:
                raise StoreUnavailable(
                    f"{len(retry)} documents still failing after {max_retries} retries "
                    f"(first: {retry[0].doc_id})"
                )
            if retry:
                delay = backoff_s(attempt, initial_backoff_s, max_backoff_s)
                log.info("bulk: retrying %d of %d documents in %.1fs", len(retry), len(todo),
                         delay)
                sleep(delay)
                attempt += 1
            todo = retry
    return failures
