"""Reading one configuration file into a model, with errors an operator can act on: the YAML
reader (duplicate keys refused, one-line parse errors) and :func:`validate`, whose
:class:`ConfigError` names the file (or the environment variable) and the dotted key, one line
per problem. The settings themselves are in config.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A config file is missing, unreadable or invalid. ``str()`` is one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[str]]]:
        # Pickling re-calls the class with ``args``, the joined string, which __init__ would
        # take for a list of one-character problems (a Beam worker's error, sent back).
        return ConfigError, (self.problems,)


# libyaml's parser when PyYAML was built with it: the rule files are read by every worker,
# and the pure-Python parser was ~8% of a batch pipeline's CPU.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A safe loader that refuses a key given twice in one mapping: YAML would silently keep
    the last value, so an operator editing the first one would see no effect."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable: the base class reports it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first on line {seen[key] + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: where (line, column) and what, without PyYAML's multi-line excerpt."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = " ".join(str(part) for part in (getattr(exc, "context", None),
                                           getattr(exc, "problem", None)) if part)
    return where + " ".join((what or str(exc)).split())


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        hint = ""
        if not path.is_absolute() and not path.exists():
            # The usual cause: a command run outside the repository, where ./config is not.
            hint = f" (looked in {Path.cwd()}; set NEWSMON_CONFIG_DIR or pass --config)"
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}{hint}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text: byte {exc.object[exc.start]:#04x} at "
                           f"offset {exc.start}"]) from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader) or {}  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {_yaml_problem(exc)}"]) from exc


def validate(
    model: type[M],
    data: Any,
    origin: Path | str,
    *,
    origin_of: Callable[[tuple[str | int, ...]], str | None] | None = None,
) -> M:
    """Validate ``data`` into ``model``; errors name ``origin`` and the dotted key.

    ``origin_of(loc)`` may name another origin for one key (an environment variable). A
    model validator that checks several keys at once names them itself: its message is one
    ``dotted.key: problem`` per line, reported as they are.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            where = (origin_of(loc) if origin_of else None) or str(origin)
            if not loc and err["type"] == "value_error":
                problems.extend(f"{where}: {line}" for line in message.splitlines())
            else:
                problems.append(f"{where}: {'.'.join(map(str, loc)) or '(top level)'}: {message}")
        raise ConfigError(problems) from exc


def load_model(model: type[M], path: Path) -> M:
    return validate(model, read_yaml(path), path)
