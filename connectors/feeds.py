"""The configured sources (config/feeds.yaml): every source, with the defaults for all.

A source is one of the types in registry.py (an RSS/Atom feed, a public Telegram channel),
each type's model living with its connector; what every source has is base.SourceBase. Its
``id`` (kebab-case) is the Kafka key and the key of its state, so it must be unique and should
never be reused for another source. ``defaults`` holds what applies to every source unless
the source overrides it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, ValidationError, ValidationInfo, model_validator

from newsmon.config import StrictModel
from newsmon.configfile import ConfigError, read_yaml, validate
from newsmon.connectors.base import Defaults, SourceBase
from newsmon.connectors.registry import SOURCE_TYPES

if TYPE_CHECKING:
    Source = SourceBase
else:
    #: One source of any registered type, told apart by its ``type`` (pydantic needs the
    #: union of the concrete models; type checkers see what they all have).
    Source = Annotated[
        Union[tuple(entry.model for entry in SOURCE_TYPES.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]


class FeedsConfig(StrictModel):
    defaults: Defaults = Defaults()
    sources: tuple[Source, ...] = ()

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> FeedsConfig:
        # load_sources defers these checks to report each problem on its own line.
        if isinstance(info.context, dict) and info.context.get("defer_checks"):
            return self
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def problems(self) -> list[str]:
        """Checks across sources: unique ids, no interval below the politeness floor (the
        defaults' ``*interval_s`` as much as each source's own)."""
        first: dict[str, int] = {}
        problems = []
        floor = self.defaults.min_interval_s
        # Only what the file sets: a default left unset is raised to the floor (interval_for),
        # so raising the floor alone stays valid.
        for name in sorted(self.defaults.model_fields_set):
            value = getattr(self.defaults, name)
            if name.endswith("interval_s") and name != "min_interval_s" and value < floor:
                problems.append(f"defaults.{name}: {value} is below defaults.min_interval_s"
                                f" ({floor})")
        for index, source in enumerate(self.sources):
            if source.id in first:
                problems.append(
                    f"sources.{index}.id: duplicate id {source.id!r}"
                    f" (first at sources.{first[source.id]})"
                )
            first.setdefault(source.id, index)
            if source.interval_s is not None and source.interval_s < self.defaults.min_interval_s:
                problems.append(
                    f"sources.{index}.interval_s: {source.interval_s} is below"
                    f" defaults.min_interval_s ({self.defaults.min_interval_s})"
                )
        return problems

    def interval_for(self, source: SourceBase) -> int:
        if source.interval_s is not None:
            return source.interval_s
        default = SOURCE_TYPES[source.type].default_interval(self.defaults)
        return max(default, self.defaults.min_interval_s)

    def get(self, source_id: str) -> Source:
        for source in self.sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)

    @property
    def enabled(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.enabled)


def _resolve_file_urls(data: Any, base: Path) -> Any:
    """``file:relative/path`` in feeds.yaml is relative to the file itself, so the demo
    config can ship with the repository and work from any working directory."""
    if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
        return data
    sources = []
    for entry in data["sources"]:
        url = entry.get("url") if isinstance(entry, dict) else None
        if isinstance(url, str) and url.startswith("file:") and not url.startswith("file:/"):
            entry = {**entry, "url": (base / url[len("file:") :]).resolve().as_uri()}
        sources.append(entry)
    return {**data, "sources": sources}


def load_sources(path: Path) -> FeedsConfig:
    """Read and validate feeds.yaml; raises ConfigError naming the file and the dotted key."""
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: (top level): must be a mapping"])
    data = _resolve_file_urls(data, path.parent)
    try:
        config = FeedsConfig.model_validate(data, context={"defer_checks": True})
    except ValidationError:
        validate(FeedsConfig, data, path)  # raises ConfigError in the house format
        raise
    problems = config.problems()
    if problems:
        raise ConfigError([f"{path}: {problem}" for problem in problems])
    return config
