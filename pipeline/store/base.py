"""The store contract: the DocumentStore base class every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

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


def project(doc: JsonDict, fields: Sequence[str] | None) -> JsonDict:
    """``doc`` cut down to ``fields`` (those it has), or whole for None."""
    return doc if fields is None else {k: doc[k] for k in fields if k in doc}


class DocumentStore(ABC):
    """The contract every backend implements. The public look-ups (:meth:`find_terms`,
    :meth:`scan`) are defined here once, with their defaults; a backend supplies the query
    (``_find_terms``, ``_scan``)."""

    backend: str

    @abstractmethod
    def setup(self) -> None: ...
    @abstractmethod
    def bulk_write(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> list[BulkFailure]: ...
    @abstractmethod
    def get(self, kind: str, doc_id: str) -> Versioned | None: ...
    @abstractmethod
    def create(self, kind: str, doc_id: str, doc: JsonDict) -> bool: ...

    def create_many(self, kind: str, docs: Sequence[tuple[str, JsonDict]]) -> set[str]:
        """Create each document unless its id exists; returns the ids that were created."""
        return {doc_id for doc_id, doc in docs if self.create(kind, doc_id, doc)}

    @abstractmethod
    def delete(self, kind: str, doc_id: str) -> bool:
        """Delete the document; False when there was none (so a retry is harmless)."""

    @abstractmethod
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
        *,
        newest_by: str | None = None,
    ) -> list[JsonDict]:
        """At most ``size`` documents of ``kind`` whose ``field`` holds one of ``values``
        (none for no values), cut down to ``fields``. With ``newest_by`` (a time field), the
        ``size`` newest by it; without, which ones when more match is the store's choice."""
        if not values:
            return []
        return self._find_terms(kind, field, values, size, fields, newest_by)

    @abstractmethod
    def _find_terms(self, kind: str, field: str, values: Sequence[str], size: int,
                    fields: Sequence[str] | None, newest_by: str | None) -> list[JsonDict]: ...

    def scan(
        self,
        kind: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        terms: Mapping[str, Sequence[str]] | None = None,
        fields: Sequence[str] | None = None,
    ) -> Iterator[JsonDict]:
        """Every document of ``kind`` whose time field is in [since, until) and that holds one
        of the values ``terms`` names for each of its fields, oldest first, cut down to
        ``fields``."""
        return self._scan(kind, since, until, terms or {}, fields)

    @abstractmethod
    def _scan(self, kind: str, since: datetime | None, until: datetime | None,
              terms: Mapping[str, Sequence[str]],
              fields: Sequence[str] | None) -> Iterator[JsonDict]: ...

    @abstractmethod
    def all_docs(self, kind: str, size: int = 10_000) -> list[JsonDict]: ...
    @abstractmethod
    def count(self, kind: str) -> int: ...
    @abstractmethod
    def refresh(self, kind: str) -> None: ...
    @abstractmethod
    def close(self) -> None: ...
