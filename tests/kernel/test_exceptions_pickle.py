"""Every project exception survives pickling with its message and its state: Beam sends an
exception raised in a worker (a DoFn's setup(), a stage) back to the launcher pickled, and a
ConfigError used to come back printing one character per line.

The exceptions are found by walking the modules, so a new one is checked without being listed.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from typing import Any

import pytest

import newsmon

#: The shipped config holds no code; a ``__main__`` module runs the CLI when imported.
SKIP_PREFIXES = ("newsmon.shipped",)


def _modules() -> list[Any]:
    found = [newsmon]
    for info in pkgutil.walk_packages(newsmon.__path__, "newsmon."):
        if info.name.startswith(SKIP_PREFIXES) or info.name.endswith(".__main__"):
            continue
        found.append(importlib.import_module(info.name))
    return found


def project_exceptions() -> list[type[BaseException]]:
    seen: dict[str, type[BaseException]] = {}
    for module in _modules():
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (issubclass(obj, BaseException) and obj.__module__.startswith("newsmon")
                    and not obj.__module__.startswith(SKIP_PREFIXES)):
                seen[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [seen[k] for k in sorted(seen)]


def sample(cls: type[BaseException]) -> BaseException:
    """An instance with every parameter set, keyword-only flags to their non-default."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = str(param.annotation)
        if "list" in annotation:
            value: Any = [f"{name}: first problem", f"{name}: second problem"]
        elif "bool" in annotation:
            value = not param.default if param.default is not param.empty else True
        else:
            value = f"{name} of the {cls.__name__}"
        if param.kind == param.KEYWORD_ONLY:
            kwargs[name] = value
        elif param.default is param.empty or "bool" in annotation:
            args.append(value)
    if not args and not kwargs:
        return cls("what went wrong\nand a second line")
    return cls(*args, **kwargs)


def test_the_walk_finds_the_exceptions_it_must() -> None:
    names = {cls.__name__ for cls in project_exceptions()}
    assert {"ConfigError", "KafkaUnavailable", "StoreUnavailable", "StoreSetupError",
            "DeliveryError", "RecordError"} <= names


@pytest.mark.parametrize("cls", project_exceptions(), ids=lambda c: c.__qualname__)
def test_exception_pickles_to_the_same_message_and_state(cls: type[BaseException]) -> None:
    original = sample(cls)
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is cls
    assert str(copy) == str(original)
    assert vars(copy) == vars(original)


def test_config_error_keeps_its_problems_not_its_characters() -> None:
    from newsmon.configfile import ConfigError

    copy = pickle.loads(pickle.dumps(ConfigError(["a.yaml: x: bad", "a.yaml: y: worse"])))
    assert copy.problems == ["a.yaml: x: bad", "a.yaml: y: worse"]
    assert str(copy).splitlines() == ["a.yaml: x: bad", "a.yaml: y: worse"]
