"""The source types: name -> :class:`~newsmon.connectors.base.SourceType` (config model,
connector, default interval). feeds.py builds the ``sources:`` union from it and the runner
builds each source's connector through it, so a new source type is one module (its model, its
connector, its ``SOURCE_TYPE``) plus one line here. The registry is the one list of type
names: the kernel's ``newsmon.models.SourceType`` checks only a name's form, and
:func:`_registered` refuses, at import, an entry whose name has not that form or whose model
does not carry it (tests/connectors/test_registry.py walks every entry).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable
from typing import Any

from newsmon.connectors import gdelt, rss, telegram
from newsmon.connectors.base import Connector, SourceBase, SourceType, Wiring
from newsmon.models import SOURCE_TYPE_NAME


def _registered(entries: Iterable[SourceType[Any]]) -> dict[str, SourceType[Any]]:
    """The entries by name; raises ValueError (at import: a programming error) on a name the
    kernel would refuse on an item, a model whose ``type`` is not ``Literal[name]``, or a name
    registered twice."""
    out: dict[str, SourceType[Any]] = {}
    for entry in entries:
        literal = typing.get_args(entry.model.model_fields["type"].annotation)
        if not re.match(SOURCE_TYPE_NAME, entry.name) or literal != (entry.name,):
            raise ValueError(f"source type {entry.name!r}: the name must match"
                             f" {SOURCE_TYPE_NAME} and its model's type be Literal[name]")
        if entry.name in out:
            raise ValueError(f"source type {entry.name!r} registered twice")
        out[entry.name] = entry
    return out


SOURCE_TYPES: dict[str, SourceType[Any]] = _registered(
    (rss.SOURCE_TYPE, telegram.SOURCE_TYPE, gdelt.SOURCE_TYPE)
)


def source_type(name: str) -> SourceType[Any]:
    """The registry entry for ``name``; KeyError names the known types."""
    try:
        return SOURCE_TYPES[name]
    except KeyError:
        raise KeyError(f"unknown source type {name!r}; known: {', '.join(SOURCE_TYPES)}") from None


def connect(source: SourceBase, wiring: Wiring) -> Connector:
    """The connector for one configured source."""
    return source_type(source.type).connect(source, wiring)
