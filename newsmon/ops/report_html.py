"""The HTML of ``newsmon report`` (report.py reads and counts): one page with inline CSS and
inline SVG charts that loads nothing. A Content-Security-Policy forbids scripts and every
outside resource, every text that came from a feed is HTML-escaped (feed titles may carry
markup or script), and links go to http(s) addresses only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from newsmon.pipeline.store import parse_time

if TYPE_CHECKING:
    from newsmon.ops.report import Report
    from newsmon.serve.measure import Tally

ALL = "all articles"


def time_of(doc: Mapping[str, Any], key: str) -> datetime | None:
    raw = doc.get(key)
    try:
        return parse_time(raw) if raw else None
    except (TypeError, ValueError):
        return None


PALETTE = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7ea4",
           "#57606a")
_TOTAL_COLOUR = "#afb8c1"


def e(value: object) -> str:
    """HTML-escape anything for text and attribute positions alike."""
    return escape(str(value), quote=True)


def safe_href(url: object) -> str | None:
    """The URL if it is a plain http(s) address, else None (no javascript:, data:...)."""
    text = str(url or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme in ("http", "https") and parts.netloc:
        return text
    return None


def link(text: object, url: object) -> str:
    href = safe_href(url)
    label = e(text) or e(url)
    if href is None:
        return label
    return f'<a href="{e(href)}" rel="noopener noreferrer">{label}</a>'


def fmt_time(t: datetime | None) -> str:
    return f"{t:%Y-%m-%d %H:%M}" if t else "–"


def _tick_label(t: datetime, bucket_s: int) -> str:
    return f"{t:%d %b}" if bucket_s >= 86400 or (t.hour, t.minute) == (0, 0) else (
        f"{t:%d %b %H:%M}")


def _ticks(starts: Sequence[datetime], bucket_s: int) -> list[int]:
    """About eight x-axis labels; at midnights when the chart spans days."""
    n = len(starts)
    if bucket_s < 86400 and n * bucket_s >= 2 * 86400:
        midnights = [i for i, t in enumerate(starts) if (t.hour, t.minute) == (0, 0)]
        return midnights[::max(1, math.ceil(len(midnights) / 10))]
    return list(range(0, n, max(1, n // 8)))


def nice_tick(peak: int) -> int:
    """A gridline step of 1, 2 or 5 times a power of ten, four of which reach ``peak``."""
    raw = max(peak / 4, 1.0)
    magnitude = 10 ** math.floor(math.log10(raw))
    return int(next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw))


def line_chart(series: Mapping[str, Sequence[int]], starts: Sequence[datetime],
               bucket_s: int, *, width: int = 1040, height: int = 280) -> str:
    """Articles per bucket as lines (one per topic) over a grey area (all articles)."""
    left, right, top, bottom = 48, 16, 12, 40
    w, h = width - left - right, height - top - bottom
    n = max(len(starts), 1)
    peak = max([1, *(max(v) if v else 0 for v in series.values())])
    tick = nice_tick(peak)
    ymax = 4 * tick

    def x(i: int) -> float:
        return left + (w * i / (n - 1) if n > 1 else w / 2)

    def y(v: int) -> float:
        return top + h - h * v / ymax

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="articles per {bucket_s // 60} minutes">']
    for k in range(5):  # gridlines and y labels
        v = tick * k
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" '
                     f'y2="{y(v):.1f}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" class="ylab">{v}</text>')
    for i in _ticks(starts, bucket_s):
        if x(i) > left + w - 30 and i:
            continue  # a label there would be cut off at the edge
        parts.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{top + h}" y2="{top + h + 4}" '
                     f'class="grid"/>')
        parts.append(f'<text x="{x(i):.1f}" y="{height - 18}" class="xlab">'
                     f'{e(_tick_label(starts[i], bucket_s))}</text>')
    for index, (name, values) in enumerate(series.items()):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        if name == ALL:
            area = f"{x(0):.1f},{y(0):.1f} {points} {x(len(values) - 1):.1f},{y(0):.1f}"
            parts.append(f'<polygon points="{area}" fill="{_TOTAL_COLOUR}" '
                         f'fill-opacity="0.35" stroke="none"/>')
            continue
        colour = PALETTE[(index - 1) % len(PALETTE)]
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                     f'stroke-width="2"/>')
        for i, v in enumerate(values):
            if v:
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}">'
                             f'<title>{e(name)}: {v} at {e(fmt_time(starts[i]))} UTC</title>'
                             f'</circle>')
    parts.append("</svg>")
    legend = ['<div class="legend">']
    for index, name in enumerate(series):
        colour = _TOTAL_COLOUR if name == ALL else PALETTE[(index - 1) % len(PALETTE)]
        legend.append(f'<span><i style="background:{colour}"></i>{e(name)} '
                      f'({sum(series[name])})</span>')
    legend.append("</div>")
    return "".join(parts) + "".join(legend)


def bar_chart(rows: Sequence[tuple[str, int, int]], *, width: int = 500) -> str:
    """Horizontal bars: all articles (light) with the part on a topic (dark) inside."""
    if not rows:
        return '<p class="empty">no articles in this window</p>'
    label_w, bar_h, gap = 200, 18, 6
    peak = max(total for _, total, _ in rows) or 1
    w = width - label_w - 60
    height = len(rows) * (bar_h + gap) + 4
    parts = [f'<svg class="bars" viewBox="0 0 {width} {height}" role="img">']
    for i, (label, total, part) in enumerate(rows):
        top = i * (bar_h + gap) + 2
        shown = label if len(label) <= 24 else label[:23] + "…"
        parts.append(f'<text x="{label_w - 8}" y="{top + 13}" class="blab">{e(shown)}'
                     f'<title>{e(label)}</title></text>')
        parts.append(f'<rect x="{label_w}" y="{top}" width="{w * total / peak:.1f}" '
                     f'height="{bar_h}" fill="{_TOTAL_COLOUR}" rx="2"/>')
        if part:
            parts.append(f'<rect x="{label_w}" y="{top}" width="{w * part / peak:.1f}" '
                         f'height="{bar_h}" fill="{PALETTE[0]}" rx="2"/>')
        parts.append(f'<text x="{label_w + w * total / peak + 6:.1f}" y="{top + 13}" '
                     f'class="bval">{total} ({part})</text>')
    parts.append("</svg>")
    return "".join(parts)


def _chips(values: Iterable[object], cls: str = "chip") -> str:
    return " ".join(f'<span class="{cls}">{e(v)}</span>' for v in values)


def distinct_snippets(snippets: Iterable[str]) -> list[str]:
    """Evidence snippets without the ones another snippet already contains, each marked as
    an excerpt once (snippets may carry their own ellipses)."""
    kept: list[str] = []
    for snippet in snippets:
        core = snippet.strip("… ").strip()
        if not core or any(core in k for k in kept):
            continue
        kept = [k for k in kept if k not in core]
        kept.append(core)
    return [f"… {k} …" for k in kept]


def _alert_row(alert: Mapping[str, Any]) -> str:
    kind = str(alert.get("kind") or "story")
    if kind == "surge":
        evidence = "".join(
            f"<li>{e(s.get('count', 1))}× {link(s.get('title', ''), s.get('url'))}</li>"
            for s in (alert.get("top_stories") or ())[:3])
    else:
        evidence = "".join(f"<li>{e(s)}</li>" for s in distinct_snippets(
            str(ev.get("snippet", "")) for ev in alert.get("evidence") or ())[:3])
    pending = set(alert.get("pending") or ())
    failed = set(alert.get("failed") or ())
    groups = (
        ("sent", "ok", set(alert.get("notified") or ())),
        ("retrying", "bad", pending & failed),
        ("pending", "warn", pending - failed),
        ("gave up", "bad", failed - pending),
        ("throttled", "muted", set(alert.get("throttled") or ())),
    )
    status = [f'<span class="chip {cls}">{e(label)}: {e(", ".join(sorted(values)))}</span>'
              for label, cls, values in groups if values]
    created = time_of(alert, "created_at")
    return (
        "<tr>"
        f"<td class=\"nowrap\">{e(fmt_time(created))}</td>"
        f'<td class="nowrap"><span class="chip {"surge" if kind == "surge" else ""}">'
        f"{e(kind)}</span><br>{e(alert.get('topic', ''))}</td>"
        f"<td>{link(alert.get('title', ''), alert.get('url'))}"
        f'<ul class="evidence">{evidence}</ul></td>'
        f"<td>{e(alert.get('source_count', len(alert.get('source_ids') or ())))}</td>"
        f"<td>{_chips(alert.get('languages') or ())}</td>"
        f"<td>{' '.join(status)}</td>"
        "</tr>"
    )


_CSS = """
:root { --fg:#1f2328; --muted:#57606a; --line:#d0d7de; --bg:#ffffff; --panel:#f6f8fa; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
       color: var(--fg); background: var(--bg); margin: 0; padding: 24px 32px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 28px 0 10px; border-bottom: 1px solid var(--line);
     padding-bottom: 4px; }
.sub { color: var(--muted); margin: 0 0 16px; }
.totals { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.total { background: var(--panel); border: 1px solid var(--line); border-radius: 6px;
         padding: 8px 14px; min-width: 120px; }
.total b { display: block; font-size: 20px; }
.total span { color: var(--muted); font-size: 12px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, sans-serif; fill: var(--muted); }
.grid { stroke: #eaeef2; stroke-width: 1; }
.ylab { text-anchor: end; } .xlab { text-anchor: middle; }
.blab { text-anchor: end; fill: var(--fg); font-size: 12px; }
.bval { font-size: 11px; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 6px 0 0 48px; color: var(--muted); }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
            margin-right: 5px; vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px;
         border-bottom: 1px solid var(--line); }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: var(--panel); }
td { overflow-wrap: anywhere; }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
.nowrap { white-space: nowrap; }
.chip { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: 12px;
        background: #eaeef2; margin: 1px 2px 1px 0; white-space: nowrap; }
.chip.ok { background: #dafbe1; color: #116329; } .chip.warn { background: #fff8c5; }
.chip.bad { background: #ffebe9; color: #a40e26; } .chip.muted { color: var(--muted); }
.chip.surge { background: #fbefff; color: #6e40c9; }
.state-ok { color: #116329; } .state-failing, .state-disabled { color: #a40e26; }
.evidence { margin: 4px 0 0; padding-left: 16px; color: var(--muted); font-size: 12px; }
.empty { color: var(--muted); font-style: italic; }
.note { background: #fff8c5; border: 1px solid #eac54f; border-radius: 6px; padding: 8px 12px; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; }
@media print { body { padding: 0; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"""

#: Nothing may load or run: no scripts, no outside styles, fonts or images.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _source_row(s: Mapping[str, Any]) -> str:
    state = str(s.get("state", "?"))
    error = str(s.get("last_error") or "")
    return (f"<tr><td>{e(s.get('name') or s.get('source_id'))}<br>"
            f'<span class="chip">{e(s.get("source_id"))}</span></td>'
            f'<td class="state-{e(state)}">{e(state)}</td>'
            f'<td class="nowrap">{e(fmt_time(time_of(s, "last_success_at")))}</td>'
            f"<td>{e(s.get('consecutive_failures', 0))}</td>"
            f"<td>{e(error[:300])}</td></tr>")


def _table(headers: Sequence[str], rows: Iterable[str]) -> list[str]:
    """The lines of a table: one header row of ``headers`` (escaped), then ``rows`` (each a
    rendered ``<tr>``)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return [f"<table><tr>{head}</tr>", *rows, "</table>"]


def render(report: Report, *, title: str = "newsmon report",
           generated_at: datetime | None = None, hint: str = "") -> str:
    """The whole page as one HTML string."""
    generated_at = generated_at or datetime.now(UTC)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="sub">{e(fmt_time(report.since))} – {e(fmt_time(report.until))} UTC · '
        f"store: {e(report.backend)} · generated {e(fmt_time(generated_at))} UTC</p>",
    ]
    if hint:
        out.append(f'<p class="note">{e(hint)}</p>')
    out.append('<div class="totals">')
    out += [f'<div class="total"><b>{value}</b><span>{e(name)}</span></div>'
            for name, value in report.totals.items()]
    out.append("</div>")

    unit = (f"{report.bucket_s // 86400} day" if report.bucket_s >= 86400
            else f"{report.bucket_s // 3600} h" if report.bucket_s >= 3600
            else f"{report.bucket_s // 60} min")
    out.append(f"<h2>Volume per topic (articles per {e(unit)}, by publication time)</h2>")
    if report.totals.get("articles"):
        out.append(line_chart(report.volume, report.bucket_starts, report.bucket_s))
    else:
        out.append('<p class="empty">no articles in this window</p>')

    out.append('<div class="grid2"><div><h2>Per language (all / on a topic)</h2>')
    out.append(bar_chart(report.by_language))
    out.append("</div><div><h2>Per source (all / on a topic)</h2>")
    out.append(bar_chart(report.by_source))
    out.append("</div></div>")
    out.append("<h2>Per source kind (all / on a topic)</h2>")
    out.append(bar_chart(report.by_kind))

    out.append("<h2>Top stories (on a topic, by number of sources)</h2>")
    if report.stories:
        out += _table(("first seen", "story", "topics", "copies", "sources", "languages"), (
            f'<tr><td class="nowrap">{e(fmt_time(s.first_seen))}</td>'
            f"<td>{link(s.title, s.url)}</td>"
            f"<td>{_chips(s.topics)}</td><td>{s.copies}</td>"
            f"<td>{e(', '.join(s.sources))}</td><td>{_chips(s.languages)}</td></tr>"
            for s in report.stories
        ))
    else:
        out.append('<p class="empty">no story on a watched topic in this window</p>')

    out.append("<h2>Latest alerts, with their evidence</h2>")
    if report.alerts:
        out += _table(("raised", "kind / topic", "alert and evidence", "sources", "languages",
                       "delivery"), map(_alert_row, report.alerts))
    else:
        out.append('<p class="empty">no alerts in this window</p>')

    out += _latency_section(report)
    out += _precision_section(report)

    out.append("<h2>Source health</h2>")
    if report.sources:
        out += _table(("source", "state", "last success", "failures in a row", "last error"),
                      map(_source_row, report.sources[:60]))
        if len(report.sources) > 60:
            out.append(f'<p class="empty">and {len(report.sources) - 60} more sources</p>')
    else:
        out.append('<p class="empty">no source health recorded (written by `newsmon poll '
                   '--once`, `newsmon run` and `newsmon sources --publish`)</p>')

    out.append("<h2>Dead letters</h2>")
    if report.dead_by_stage:
        out.append("<p>" + " ".join(f'<span class="chip bad">{e(stage)}: {n}</span>'
                                    for stage, n in report.dead_by_stage) + "</p>")
        out += _table(("parked", "stage", "source", "error"), (
            f'<tr><td class="nowrap">{e(fmt_time(time_of(d, "created_at")))}</td>'
            f"<td>{e(d.get('stage'))}</td><td>{e(d.get('source_id'))}</td>"
            f"<td>{e(str(d.get('error', ''))[:300])}</td></tr>"
            for d in report.dead_latest))
    else:
        out.append('<p class="empty">none: every item in this window was handled</p>')
    out.append("<footer>newsmon · replay dead letters with <code>newsmon deadletters "
               "--replay</code> · this page loads nothing from the network</footer>")
    out.append("</body></html>")
    return "\n".join(out)


def _precision_section(report: Report) -> list[str]:
    """Live precision from the inbox's labels: per rule, language and source label."""
    p = report.precision
    out = ["<h2>Live precision (alerts labelled in the inbox)</h2>"]
    if not p.overall.labelled:
        return [*out, '<p class="empty">no alert in this window was labelled confirmed or '
                'false positive (`newsmon serve`)</p>']

    def row(dim: str, key: str, t: Tally) -> str:
        shown = "–" if t.precision is None else f"{t.precision:.0%}"
        return (f"<tr><td>{e(dim)}</td><td>{e(key)}</td><td>{shown}</td>"
                f"<td>{t.confirmed}</td><td>{t.false_positive}</td></tr>")

    rows = [row("all", "all", p.overall)]
    rows += [row(dim.replace("_", " "), key, t)
             for dim, groups in p.by.items() for key, t in sorted(groups.items())]
    return out + _table(("by", "group", "precision", "confirmed", "false positive"), rows)


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _latency_section(report: Report) -> list[str]:
    """Time-to-alert p50/p95 per source kind (report.time_to_alert)."""
    out = ["<h2>Time to alert (publication to first notification)</h2>"]
    if not report.time_to_alert:
        return [*out, '<p class="empty">no alert in this window was notified with its '
                "times recorded</p>"]
    return out + _table(("source kind", "alerts", "p50", "p95"), (
        f"<tr><td>{e(row.kind)}</td><td>{row.alerts}</td><td>{_seconds(row.p50_s)}</td>"
        f"<td>{_seconds(row.p95_s)}</td></tr>" for row in report.time_to_alert))
