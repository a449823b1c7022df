"""The source types: name -> :class:`~newsmon.connectors.base.SourceType` (config model,
connector, default interval). feeds.py builds the ``sources:`` union from it and the runner
builds each source's connector through it, so a new source type is one module (its model, its
connector, its ``SOURCE_TYPE``) plus one line here — and its name in
``newsmon.models.SourceType``, the names items may carry (tests/connectors/test_registry.py
checks the two agree).
"""

from __future__ import annotations

from typing import Any

from newsmon.connectors import rss, telegram
from newsmon.connectors.base import Connector, SourceBase, SourceType, Wiring

SOURCE_TYPES: dict[str, SourceType[Any]] = {
    entry.name: entry for entry in (rss.SOURCE_TYPE, telegram.SOURCE_TYPE)
}


def source_type(name: str) -> SourceType[Any]:
    """The registry entry for ``name``; KeyError names the known types."""
    try:
        return SOURCE_TYPES[name]
    except KeyError:
        raise KeyError(f"unknown source type {name!r}; known: {', '.join(SOURCE_TYPES)}") from None


def connect(source: SourceBase, wiring: Wiring) -> Connector:
    """The connector for one configured source."""
    return source_type(source.type).connect(source, wiring)
