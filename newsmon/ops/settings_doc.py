"""docs/settings.md, generated from the settings models: one table of every setting.

``newsmon config docs --out docs/settings.md`` writes it; a test fails when the file and the
models disagree, so the table cannot drift from the code.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from newsmon.config import ENV_PREFIX, Settings


@dataclass(frozen=True)
class SettingDoc:
    key: str
    env: str
    type: str
    default: str
    secret: bool
    description: str


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " \\| ".join(_type_name(a) for a in args) + " (optional)"
    if isinstance(annotation, type):
        if issubclass(annotation, SecretStr):
            return "secret string"
        if issubclass(annotation, Path):
            return "path"
        if issubclass(annotation, Enum):
            return " \\| ".join(f"`{m.value}`" for m in annotation)
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(
            annotation.__name__, annotation.__name__)
    return str(annotation)


def _default(field: FieldInfo) -> str:
    value = field.default
    if value is PydanticUndefined or value is None:
        return ""
    if isinstance(value, Path):
        value = str(value)
    return f"`{json.dumps(value) if not isinstance(value, str) else value}`"


def _is_secret(annotation: Any) -> bool:
    return SecretStr in (annotation, *typing.get_args(annotation))


def settings_docs(model: type[BaseModel] = Settings, path: tuple[str, ...] = ()) -> Iterator[
    SettingDoc
]:
    """Every leaf setting, depth first in declaration order, with its YAML key and variable."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        keys = (*path, name)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from settings_docs(annotation, keys)
            continue
        yield SettingDoc(
            key=".".join(keys),
            env=ENV_PREFIX + "__".join(k.upper() for k in keys),
            type=_type_name(annotation),
            default=_default(field),
            secret=_is_secret(annotation),
            description=" ".join((field.description or "").split()),
        )


HEADER = """\
# Settings

Generated from the settings models (`newsmon/config.py`) by `newsmon config docs --out
docs/settings.md`; a test fails when this file is out of date. Do not edit by hand.

Every setting can be written in `newsmon.yaml` (the YAML key) or given in the environment
(the variable), which wins over the file. Secrets can only come from the environment: a
secret in `newsmon.yaml` is an error. Besides these, `NEWSMON_CONFIG_DIR` names the directory
holding `newsmon.yaml` (default `config`); `--config PATH` names the file itself.

| YAML key | environment variable | type | default | description |
|---|---|---|---|---|
"""


def render() -> str:
    rows = []
    for doc in settings_docs():
        env = f"`{doc.env}`" + (" (secret: environment only)" if doc.secret else "")
        description = doc.description.replace("|", "\\|")
        rows.append(f"| `{doc.key}` | {env} | {doc.type} | {doc.default} | {description} |")
    return HEADER + "\n".join(rows) + "\n"


def setting_env_names() -> set[str]:
    """Every environment variable that names a setting (for the deploy consistency tests)."""
    return {doc.env for doc in settings_docs()}
