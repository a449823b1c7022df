"""Kibana saved objects (data views, Lens panels, saved searches, one dashboard) for any index
prefix, generated from these definitions by ``newsmon search kibana``; the shipped
``deploy/kibana/newsmon.ndjson`` is the set for the default prefix ``newsmon``.

Importable through Kibana's saved objects API (8.x and 9.x)::

    curl -X POST "$KIBANA/api/saved_objects/_import?overwrite=true" -H "kbn-xsrf: true" \
         --form file=@deploy/kibana/newsmon.ndjson

The format follows Kibana's own sample data: data views (``index-pattern``), saved searches
(``search``), and a dashboard whose charts are Lens panels stored by value. Every field a panel
uses must exist in mappings.py; a test checks the file against the mappings, so a renamed field
fails the build rather than a dashboard. Ids are fixed, so re-importing replaces, never
duplicates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JsonDict = dict[str, Any]

#: The versions the objects' shapes belong to (Kibana migrates them forward on import).
CORE_MIGRATION = "8.8.0"
TYPE_MIGRATION = {"index-pattern": "7.11.0", "search": "7.9.3", "dashboard": "8.7.0"}
PANEL_VERSION = "8.11.0"
#: Lens' name for "count of documents": not a field.
RECORDS = "___records___"
#: Lens operations that aggregate, so their field must be aggregatable (keyword, date, number).
AGGREGATING = frozenset({"terms", "date_histogram", "unique_count", "sum", "average", "max",
                         "min"})

#: data view kind -> its time field.
DATA_VIEWS: dict[str, str] = {
    "articles": "published_at",
    "alerts": "created_at",
    "dead-letters": "created_at",
    "source-health": "checked_at",
}


def data_view_id(prefix: str, kind: str) -> str:
    return f"{prefix}-{kind}-dv"


# --- Lens columns ------------------------------------------------------------------------------


def _count() -> JsonDict:
    return {"label": "Count of records", "dataType": "number", "operationType": "count",
            "isBucketed": False, "scale": "ratio", "sourceField": RECORDS,
            "params": {"emptyAsNull": True}}


def _date(field: str) -> JsonDict:
    return {"label": field, "dataType": "date", "operationType": "date_histogram",
            "sourceField": field, "isBucketed": True, "scale": "interval",
            "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False}}


def _terms(field: str, size: int, order_by: str, label: str) -> JsonDict:
    return {"label": label, "customLabel": True, "dataType": "string", "operationType": "terms",
            "scale": "ordinal", "sourceField": field, "isBucketed": True,
            "params": {"size": size, "orderBy": {"type": "column", "columnId": order_by},
                       "orderDirection": "desc", "otherBucket": False,
                       "missingBucket": False, "parentFormat": {"id": "terms"}}}


def _unique(field: str, label: str) -> JsonDict:
    return {"label": label, "customLabel": True, "dataType": "number",
            "operationType": "unique_count", "scale": "ratio", "sourceField": field,
            "isBucketed": False, "params": {"emptyAsNull": True}}


def _last(field: str, sort_field: str, label: str) -> JsonDict:
    return {"label": label, "customLabel": True, "dataType": "string",
            "operationType": "last_value", "scale": "ordinal", "sourceField": field,
            "isBucketed": False, "params": {"sortField": sort_field}}


@dataclass(frozen=True)
class LensPanel:
    title: str
    kind: str
    #: "line", "bar_stacked", "bar_horizontal" (lnsXY) or "table" (lnsDatatable).
    chart: str
    #: column id -> column; x (or rows), then metrics, then an optional split.
    columns: Mapping[str, JsonDict]
    x: str
    metrics: tuple[str, ...]
    split: str | None = None
    query: str = ""
    grid: tuple[int, int, int, int] = (0, 0, 24, 12)


@dataclass(frozen=True)
class SearchPanel:
    title: str
    kind: str
    columns: tuple[str, ...]
    sort: tuple[str, str]
    query: str = ""
    grid: tuple[int, int, int, int] = (0, 0, 48, 14)

    @property
    def slug(self) -> str:
        return self.title.lower().replace(" ", "-").replace(",", "")


def panels() -> list[LensPanel | SearchPanel]:
    """The dashboard, top to bottom: the views of the HTML report, as Kibana panels."""
    return [
        LensPanel("Articles per topic over time", "articles", "line",
                  {"x": _date("published_at"), "n": _count(),
                   "topic": _terms("topic_names", 10, "n", "Topic")},
                  x="x", metrics=("n",), split="topic", query="topic_names : *",
                  grid=(0, 0, 32, 14)),
        LensPanel("Alerts over time", "alerts", "bar_stacked",
                  {"x": _date("created_at"), "n": _count(),
                   "rule": _terms("rule", 10, "n", "Rule")},
                  x="x", metrics=("n",), split="rule", grid=(32, 0, 16, 14)),
        LensPanel("Articles per language", "articles", "bar_horizontal",
                  {"lang": _terms("lang", 15, "n", "Language"), "n": _count()},
                  x="lang", metrics=("n",), grid=(0, 14, 16, 14)),
        LensPanel("Articles per source", "articles", "bar_horizontal",
                  {"src": _terms("source.name.raw", 20, "n", "Source"), "n": _count()},
                  x="src", metrics=("n",), grid=(16, 14, 16, 14)),
        LensPanel("Sources by health", "source-health", "bar_horizontal",
                  {"state": _terms("state", 6, "n", "State"), "n": _count()},
                  x="state", metrics=("n",), grid=(32, 14, 16, 14)),
        LensPanel("Top stories", "articles", "table",
                  {"story": _terms("story_id", 20, "sources", "Story"),
                   "title": _last("title.raw", "published_at", "Title (latest copy)"),
                   "sources": _unique("source.id", "Sources"),
                   "langs": _unique("lang", "Languages"), "n": _count()},
                  x="story", metrics=("title", "sources", "langs", "n"),
                  query="topic_names : *", grid=(0, 28, 48, 16)),
        SearchPanel("Latest alerts with evidence", "alerts",
                    ("kind", "rule", "topic", "title", "url", "sources_line", "corroborated",
                     "source_count", "languages", "snippets", "notified", "pending", "failed",
                     "throttled"),
                    ("created_at", "desc"), grid=(0, 44, 48, 16)),
        SearchPanel("Source health", "source-health",
                    ("source_id", "name", "state", "last_success_at", "consecutive_failures",
                     "last_error"),
                    ("state", "asc"), grid=(0, 60, 32, 14)),
        LensPanel("Dead letters per stage", "dead-letters", "bar_stacked",
                  {"x": _date("created_at"), "n": _count(),
                   "stage": _terms("stage", 10, "n", "Stage")},
                  x="x", metrics=("n",), split="stage", grid=(32, 60, 16, 14)),
        SearchPanel("Dead letters", "dead-letters", ("stage", "source_id", "error", "replayed"),
                    ("created_at", "desc"), query="replayed : false", grid=(0, 74, 48, 12)),
        # Who reports (labels, issue 16): kinds split by country; the saved search below is
        # the filter an analyst starts from ("state-affiliated only": edit the query).
        LensPanel("Articles per source kind and country", "articles", "bar_horizontal",
                  {"kind": _terms("source_kind", 8, "n", "Source kind"), "n": _count(),
                   "country": _terms("source_country", 10, "n", "Country")},
                  x="kind", metrics=("n",), split="country", query="source_kind : *",
                  grid=(0, 86, 24, 14)),
        SearchPanel("Articles by source label", "articles",
                    ("source_name", "source_kind", "source_country", "source_owner", "title",
                     "url"),
                    ("published_at", "desc"), query="source_kind : *", grid=(24, 86, 24, 14)),
    ]


def _lens_state(panel: LensPanel, layer: str) -> JsonDict:
    order = [panel.x, *([panel.split] if panel.split else []), *panel.metrics]
    if panel.chart == "table":
        visualization: JsonDict = {
            "layerId": layer, "layerType": "data",
            "columns": [{"columnId": c} for c in order],
        }
        vis_type = "lnsDatatable"
    else:
        layer_state: JsonDict = {"layerId": layer, "layerType": "data",
                                 "seriesType": panel.chart, "xAccessor": panel.x,
                                 "accessors": list(panel.metrics)}
        if panel.split:
            layer_state["splitAccessor"] = panel.split
        visualization = {
            "legend": {"isVisible": bool(panel.split), "position": "right"},
            "valueLabels": "hide", "fittingFunction": "None",
            "preferredSeriesType": panel.chart, "layers": [layer_state],
        }
        vis_type = "lnsXY"
    return {
        "title": panel.title,
        "visualizationType": vis_type,
        "type": "lens",
        "state": {
            "visualization": visualization,
            "query": {"query": panel.query, "language": "kuery"},
            "filters": [],
            "datasourceStates": {"formBased": {"layers": {layer: {
                "columns": dict(panel.columns), "columnOrder": order,
                "incompleteColumns": {}}}}},
        },
    }


def _search_source(query: str) -> str:
    source: JsonDict = {"query": {"query": query, "language": "kuery"}, "filter": [],
                        "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"}
    return json.dumps(source)


def saved_objects(prefix: str = "newsmon") -> list[JsonDict]:
    """Every object, in import order: data views, saved searches, the dashboard."""
    objects: list[JsonDict] = []
    for kind, time_field in DATA_VIEWS.items():
        objects.append({
            "id": data_view_id(prefix, kind), "type": "index-pattern",
            "attributes": {"title": f"{prefix}-{kind}", "name": f"{prefix} {kind}",
                           "timeFieldName": time_field, "fields": "[]",
                           "fieldFormatMap": "{}", "runtimeFieldMap": "{}", "typeMeta": "{}"},
            "references": [],
        })
    dashboard_panels: list[JsonDict] = []
    dashboard_refs: list[JsonDict] = []
    for index, panel in enumerate(panels(), start=1):
        x, y, w, h = panel.grid
        pid = f"p{index}"
        grid = {"x": x, "y": y, "w": w, "h": h, "i": pid}
        dv = data_view_id(prefix, panel.kind)
        if isinstance(panel, SearchPanel):
            search_id = f"{prefix}-{panel.slug}"
            objects.append({
                "id": search_id, "type": "search",
                "attributes": {
                    "title": f"newsmon: {panel.title}", "description": "",
                    "columns": list(panel.columns), "sort": [list(panel.sort)],
                    "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source(panel.query)},
                },
                "references": [{"id": dv, "type": "index-pattern",
                                "name": "kibanaSavedObjectMeta.searchSourceJSON.index"}],
            })
            dashboard_panels.append({"version": PANEL_VERSION, "type": "search",
                                     "gridData": grid, "panelIndex": pid,
                                     "embeddableConfig": {"enhancements": {}},
                                     "panelRefName": f"panel_{pid}", "title": panel.title})
            dashboard_refs.append({"name": f"{pid}:panel_{pid}", "type": "search",
                                   "id": search_id})
            continue
        layer = f"{pid}-layer"
        ref_name = f"indexpattern-datasource-layer-{layer}"
        attributes = _lens_state(panel, layer)
        attributes["references"] = [{"type": "index-pattern", "id": dv, "name": ref_name}]
        dashboard_panels.append({"version": PANEL_VERSION, "type": "lens", "gridData": grid,
                                 "panelIndex": pid,
                                 "embeddableConfig": {"attributes": attributes,
                                                      "enhancements": {}},
                                 "title": panel.title})
        dashboard_refs.append({"type": "index-pattern", "id": dv, "name": f"{pid}:{ref_name}"})
    objects.append({
        "id": f"{prefix}-overview", "type": "dashboard",
        "attributes": {
            # Two prefixes imported into one Kibana keep apart by title as well as by id.
            "title": "newsmon overview" + ("" if prefix == "newsmon" else f" ({prefix})"),
            "description": "Volume per topic, language and source; top stories; latest alerts "
                           "with evidence and who reports them; source health; dead letters; "
                           "articles by source kind, country and owner.",
            "panelsJSON": json.dumps(dashboard_panels),
            "optionsJSON": json.dumps({"useMargins": True, "syncColors": False,
                                       "syncCursor": True, "syncTooltips": False,
                                       "hidePanelTitles": False}),
            "timeRestore": True, "timeFrom": "now-7d", "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 60000},
            "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(
                {"query": {"query": "", "language": "kuery"}, "filter": []})},
            "version": 1,
        },
        "references": dashboard_refs,
    })
    for obj in objects:
        obj["coreMigrationVersion"] = CORE_MIGRATION
        obj["typeMigrationVersion"] = TYPE_MIGRATION[obj["type"]]
    return objects


def ndjson(prefix: str = "newsmon") -> str:
    return "".join(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n"
                   for obj in saved_objects(prefix))


# --- what the objects reference (for the field check) ---------------------------------------


def referenced_fields(objects: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """(data view title, field, where) for every field the saved objects use: Lens columns
    and sort fields, saved-search columns and sort, KQL queries, time fields."""
    views = {o["id"]: o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    for obj in objects:
        attrs = obj["attributes"]
        if obj["type"] == "index-pattern":
            yield attrs["title"], attrs["timeFieldName"], f"{obj['id']} time field"
        elif obj["type"] == "search":
            view = views[obj["references"][0]["id"]]
            for column in attrs["columns"]:
                yield view, column, f"{obj['id']} column"
            for field, _ in attrs["sort"]:
                yield view, field, f"{obj['id']} sort"
            query = json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]
            for field in kql_fields(query["query"]):
                yield view, field, f"{obj['id']} query"
        elif obj["type"] == "dashboard":
            for panel in json.loads(attrs["panelsJSON"]):
                lens = panel.get("embeddableConfig", {}).get("attributes")
                if not lens:
                    continue
                view = views[lens["references"][0]["id"]]
                where = f"panel {lens['title']!r}"
                state = lens["state"]
                for layer in state["datasourceStates"]["formBased"]["layers"].values():
                    for column in layer["columns"].values():
                        if column["sourceField"] != RECORDS:
                            yield view, column["sourceField"], where
                        sort_field = column.get("params", {}).get("sortField")
                        if sort_field:
                            yield view, sort_field, where
                for field in kql_fields(state["query"]["query"]):
                    yield view, field, where


def kql_fields(query: str) -> list[str]:
    """Field names in a simple KQL query (``field : value`` terms)."""
    return re.findall(r"([A-Za-z_][\w.]*)\s*:", query)
