"""Kibana saved objects: in sync with their definitions, well formed, and every field they use
exists in mappings.py (and, on the real servers, is searchable and aggregatable where needed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsmon.config import SearchSettings
from newsmon.languages import COMMON_LANGUAGES
from newsmon.ops.dashboards import (
    AGGREGATING,
    DATA_VIEWS,
    RECORDS,
    kql_fields,
    ndjson,
    referenced_fields,
)
from newsmon.pipeline.store import open_store
from newsmon.pipeline.store.mappings import field_paths, kind_mapping

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "kibana" / "newsmon.ndjson"
AGGREGATABLE = {"keyword", "date", "integer", "long", "float", "boolean"}


def shipped() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SHIPPED.read_text().splitlines() if line.strip()]


def fields_of(kind: str) -> dict[str, str]:
    return dict(field_paths(kind_mapping(kind, COMMON_LANGUAGES)))


def kind_of(view_title: str) -> str:
    return view_title.removeprefix("newsmon-")


def lens_columns(objects: list[dict[str, Any]]) -> Iterator[tuple[str, Any, Any]]:
    """(data view title, chart, column) of every column of every Lens chart on a dashboard."""
    for obj in objects:
        if obj["type"] != "dashboard":
            continue
        for panel in json.loads(obj["attributes"]["panelsJSON"]):
            lens = panel.get("embeddableConfig", {}).get("attributes")
            if not lens:
                continue
            view = next(o["attributes"]["title"] for o in objects
                        if o["id"] == lens["references"][0]["id"])
            for layer in lens["state"]["datasourceStates"]["formBased"]["layers"].values():
                for column in layer["columns"].values():
                    yield view, lens, column


def test_shipped_file_is_generated_from_the_definitions() -> None:
    assert SHIPPED.read_text() == ndjson("newsmon"), (
        "deploy/kibana/newsmon.ndjson is stale: run `newsmon search kibana`")


def test_every_referenced_field_exists_in_the_mappings() -> None:
    objects = shipped()
    refs = list(referenced_fields(objects))
    assert len(refs) > 30  # the check sees the panels, not an empty list
    missing = [(view, field, where) for view, field, where in refs
               if field not in fields_of(kind_of(view))]
    assert missing == []
    for view, time_field in ((o["attributes"]["title"], o["attributes"]["timeFieldName"])
                             for o in objects if o["type"] == "index-pattern"):
        assert fields_of(kind_of(view))[time_field] == "date"
        assert DATA_VIEWS[kind_of(view)] == time_field


def test_charts_aggregate_only_aggregatable_fields() -> None:
    charts = list(lens_columns(shipped()))
    assert len(charts) > 5  # the check sees the charts, not an empty list
    for view, lens, column in charts:
        if column["operationType"] in AGGREGATING:
            kind = fields_of(kind_of(view))[column["sourceField"]]
            assert kind in AGGREGATABLE, (lens["title"], column["sourceField"])


def test_references_resolve_and_ids_are_unique() -> None:
    objects = shipped()
    ids = [(o["type"], o["id"]) for o in objects]
    assert len(ids) == len(set(ids))
    known = set(ids)
    for obj in objects:
        assert {"id", "type", "attributes", "references", "coreMigrationVersion",
                "typeMigrationVersion"} <= set(obj)
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in known, (obj["id"], ref)
    dashboard = next(o for o in objects if o["type"] == "dashboard")
    names = {r["name"] for r in dashboard["references"]}
    for panel in json.loads(dashboard["attributes"]["panelsJSON"]):
        if "panelRefName" in panel:
            assert f"{panel['panelIndex']}:{panel['panelRefName']}" in names
        else:
            for ref in panel["embeddableConfig"]["attributes"]["references"]:
                assert f"{panel['panelIndex']}:{ref['name']}" in names
    titles = {json.loads(dashboard["attributes"]["panelsJSON"])[i]["title"] for i in range(10)}
    assert {"Articles per topic over time", "Articles per language", "Articles per source",
            "Top stories", "Latest alerts with evidence", "Source health"} <= titles


def test_kql_field_extraction() -> None:
    assert kql_fields("topic_names : * and source.id:abc") == ["topic_names", "source.id"]


@pytest.mark.integration
def test_saved_objects_fields_on_the_real_server(search_settings: SearchSettings) -> None:
    """After `search setup`, the server knows every field the saved objects use under the
    data views' names, aggregatable where a chart aggregates it."""
    store = open_store(search_settings, Path("unused"))
    store.setup()
    store.close()
    prefix = search_settings.index_prefix
    objects = [json.loads(line) for line in ndjson(prefix).splitlines()]
    by_view: dict[str, set[str]] = {}
    for view, field, _ in referenced_fields(objects):
        by_view.setdefault(view, set()).add(field)
    assert set(by_view) == {f"{prefix}-{kind}" for kind in DATA_VIEWS}
    for view, fields in by_view.items():
        caps = httpx.get(f"{search_settings.url}/{view}/_field_caps",
                         params={"fields": ",".join(sorted(fields))}, timeout=30).json()
        assert fields <= set(caps["fields"]), (view, fields - set(caps["fields"]))
    for view, lens, column in lens_columns(objects):
        if column["sourceField"] == RECORDS:
            continue
        caps = httpx.get(f"{search_settings.url}/{view}/_field_caps",
                         params={"fields": column["sourceField"]}, timeout=30).json()
        info = next(iter(caps["fields"][column["sourceField"]].values()))
        if column["operationType"] in AGGREGATING:
            assert info["aggregatable"], (lens["title"], column["sourceField"])
