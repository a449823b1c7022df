"""The store contract: the DocumentStore protocol every backend implements."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from newsmon.pipeline.store.bulk import BulkFailure

JsonDict = dict[str, Any]


def parse_time(value: str | datetime) -> datetime:
    """A stored ISO 8601 time as an aware UTC datetime."""
    if isinstance(value, datetime):
        stamp = value
    else:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)



@dataclass(frozen=True)
class Versioned:
    """A stored document with the version token ``replace_if`` needs."""

    source: JsonDict
    version: tuple[int, int]


class DocumentStore(Protocol):
    backend: str

    def setup(self) -> None: ...
    def bulk_write(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> list[BulkFailure]: ...
    def get(self, kind: str, doc_id: str) -> Versioned | None: ...
    def create(self, kind: str, doc_id: str, doc: JsonDict) -> bool: ...
    def create_many(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> set[str]: ...
    def replace_if(
        self, kind: str, doc_id: str, doc: JsonDict, version: tuple[int, int]
    ) -> bool: ...
    def find_terms(
        self,
        kind: str,
        field: str,
        values: Sequence[str],
        size: int = 50,
        fields: Sequence[str] | None = None,
    ) -> list[JsonDict]: ...
    def scan(
        self,
        kind: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        terms: Mapping[str, Sequence[str]] | None = None,
        fields: Sequence[str] | None = None,
    ) -> Iterator[JsonDict]: ...
    def all_docs(self, kind: str, size: int = 10_000) -> list[JsonDict]: ...
    def count(self, kind: str) -> int: ...
    def refresh(self, kind: str) -> None: ...
    def close(self) -> None: ...
