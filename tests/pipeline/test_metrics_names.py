"""Every Beam counter the pipeline increments reaches Prometheus (the "surges" counter once
did not: app.py counted it, apply_beam_counter dropped it).

The counters are found by walking the AST of every pipeline module: each one must be named
through newsmon.metrics (a constant or a builder), and each such name must be exported.
"""

from __future__ import annotations

import ast
import inspect
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsmon import metrics
from newsmon.models import PIPELINE_STAGES

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"


def _counter_names() -> Iterator[tuple[str, ast.expr]]:
    """(where, name expression) of every Beam counter increment in pipeline/."""
    for path in sorted(PIPELINE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        # The one funnel, stages.base.count(name, n), passes its parameter on: its callers
        # are the ones checked.
        funnel = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                  and f.name == "count" for n in ast.walk(f)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            # Metrics.counter(NAMESPACE, name) and the stages' count(name, n)
            if (isinstance(func, ast.Attribute) and func.attr == "counter"
                    and isinstance(func.value, ast.Name) and func.value.id == "Metrics"):
                if id(node) not in funnel:
                    yield f"{path.name}:{node.lineno}", node.args[1]
            elif isinstance(func, ast.Name) and func.id == "count" and node.args:
                yield f"{path.name}:{node.lineno}", node.args[0]


COUNTERS = list(_counter_names())


def _examples(builder: str) -> list[str]:
    """The names a builder of newsmon.metrics makes, over the values its parameters take."""
    fn = getattr(metrics, builder)
    hints = typing.get_type_hints(fn)
    choices: list[list[object]] = []
    for param in inspect.signature(fn).parameters:
        hint = hints[param]
        if hint is typing.get_type_hints(metrics.dead_letter_counter)["stage"]:
            choices.append(list(PIPELINE_STAGES))
        elif typing.get_origin(hint) is typing.Literal:
            choices.append(list(typing.get_args(hint)))
        elif param == "status":
            choices.append(["ok", "failed", "throttled", "expired"])
        else:
            choices.append(["some_value"])
    combos: list[list[object]] = [[]]
    for options in choices:
        combos = [[*prefix, option] for prefix in combos for option in options]
    return [fn(*args) for args in combos]


def test_the_walk_finds_the_counters() -> None:
    # Enough that a walk finding nothing (a renamed helper) cannot pass.
    assert len(COUNTERS) >= 15


@pytest.mark.parametrize(("where", "expr"), COUNTERS, ids=[w for w, _ in COUNTERS])
def test_every_counter_is_named_by_newsmon_metrics_and_exported(where: str,
                                                               expr: ast.expr) -> None:
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and (
            expr.value.id == "metrics"):
        names = [getattr(metrics, expr.attr)]
    elif (isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute)
          and isinstance(expr.func.value, ast.Name) and expr.func.value.id == "metrics"):
        names = _examples(expr.func.attr)
    else:
        pytest.fail(f"{where}: counter named {ast.unparse(expr)!r}, not through "
                    "newsmon.metrics")
    for name in names:
        assert metrics.apply_beam_counter(name, 1), f"{where}: {name} is not exported"


def test_surges_reach_prometheus() -> None:
    before = metrics.REGISTRY.get_sample_value("newsmon_surges_total", {"event": "raised"}) or 0
    assert metrics.apply_beam_counter(metrics.SURGES_RAISED, 2)
    after = metrics.REGISTRY.get_sample_value("newsmon_surges_total", {"event": "raised"})
    assert after == before + 2


def test_an_unknown_name_is_reported_not_dropped_silently() -> None:
    assert not metrics.apply_beam_counter("surge_count_typo", 1)


def test_the_stages_counted_are_exactly_the_pipeline_stages_of_the_one_list() -> None:
    """models.PIPELINE_STAGES once disagreed with the stages the graph had (metrics.STAGES
    and a second Literal): the names the stages count under must be that list, no more."""
    counted: set[str] = set()
    for path in sorted(PIPELINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "stage_counter"
                    and isinstance(node.args[0], ast.Constant)):
                counted.add(node.args[0].value)
            # a ParkFailures subclass names its stage once: stage: ClassVar[Stage] = "..."
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and node.target.id == "stage" and isinstance(node.value, ast.Constant)):
                counted.add(node.value.value)
    assert counted == set(PIPELINE_STAGES)
