"""``newsmon alerts test|surge|deliver|list``: dry runs, surges, deliveries."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from newsmon.cli import _common as common
from newsmon.cli._common import EXIT_FAILED, ConfigOpt, fail, load_alerts, settings, window

alerts_app = common.command_group("alerts", "Alert rules: dry runs, surges, deliveries.")


@alerts_app.command("test")
def alerts_test(
    rule: Annotated[str, typer.Option("--rule", help="The rule's name in alerts.yaml.")],
    since: common.SinceOpt = "24h",
    until: common.UntilOpt = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Dry-run one rule on what is indexed: print what would alert; nothing is sent or written."""
    from newsmon.pipeline.alerts import rules as alerting
    from newsmon.pipeline.alerts import surge
    from newsmon.pipeline.alerts.config import SurgeRule
    from newsmon.pipeline.store import open_store

    loaded = settings(config)
    configured = load_alerts(loaded)
    chosen = configured.rule(rule)
    if chosen is None:
        names = ", ".join(r.name for r in (*configured.rules, *configured.surges)) or "none"
        raise fail(f"no rule {rule!r} in {loaded.alerts} (rules: {names})", common.EXIT_CONFIG)
    start, end = window(since, until)
    store = open_store(loaded.search, loaded.state_dir)
    if isinstance(chosen, SurgeRule):
        findings = surge.timeline(store, chosen, start, end)
        for f in findings:
            s = f.stats
            if as_json:
                typer.echo(json.dumps({"interval_start": f.interval_start.isoformat(),
                                       "count": s.count, "mean": round(s.mean, 3),
                                       "std": round(s.std, 3),
                                       "expected_max": round(s.expected_max, 3),
                                       "surge": s.surge}))
            elif s.count or s.surge:
                mark = "SURGE" if s.surge else "     "
                typer.echo(f"{f.interval_start:%Y-%m-%d %H:%M}  {mark}  {s.count:>5} articles"
                           f"  (baseline {s.mean:.1f} ± {s.std:.1f}, surge above "
                           f"{s.expected_max:.1f})")
        n = sum(1 for f in findings if f.stats.surge)
        typer.echo(f"surge rule {chosen.name} (topic {chosen.topic}): {n} surge intervals of "
                   f"{len(findings)} from {start:%Y-%m-%d %H:%M} UTC; dry run, nothing sent",
                   err=True)
        return
    docs = store.scan("articles", since=start, until=end, terms={"topic_names": [chosen.topic]})
    would = alerting.dry_run(chosen, alerting.articles_from_documents(docs),
                             too_old=configured.too_old)
    for alert in would:
        if as_json:
            typer.echo(alert.model_dump_json())
            continue
        typer.echo(f"{alert.created_at:%Y-%m-%d %H:%M}  score {alert.score:.2f}  "
                   f"{len(alert.doc_ids)} copies · {len(alert.source_ids)} sources · "
                   f"{', '.join(alert.languages)}  {alert.title}")
        typer.echo(f"    {alert.url}")
        for snippet in list(dict.fromkeys(ev.snippet for ev in alert.evidence))[:2]:
            typer.echo(f"    … {snippet} …")
    typer.echo(f"rule {chosen.name} (topic {chosen.topic}, threshold {chosen.threshold}): "
               f"{len(would)} alerts from {start:%Y-%m-%d %H:%M} UTC; dry run, nothing sent",
               err=True)


@alerts_app.command("surge")
def alerts_surge(
    config: ConfigOpt = None,
    at: common.UntilOpt = None,
    deliver: Annotated[bool, typer.Option(help="Deliver new surges to their channels.")] = True,
) -> None:
    """Evaluate the surge rules now (for a schedule; every pipeline run does it too)."""
    from newsmon.pipeline.alerts.delivery import Deliverer
    from newsmon.pipeline.alerts.surge import evaluate_surges
    from newsmon.pipeline.store import StoreUnavailable, open_store

    loaded = settings(config)
    configured = load_alerts(loaded)
    _, now = window("1s", at)
    store = open_store(loaded.search, loaded.state_dir)
    try:
        store.refresh("articles")
        found = evaluate_surges(store, configured, now)
        deliverer = Deliverer(store, configured)
        for finding in found:
            s = finding.stats
            typer.echo(f"{finding.rule.name}: {s.count} articles from "
                       f"{finding.interval_start:%Y-%m-%d %H:%M} UTC (surge above "
                       f"{s.expected_max:.1f}; baseline {s.mean:.1f} ± {s.std:.1f})")
            if deliver:
                for attempt in deliverer.deliver(finding.alert_id, now):
                    typer.echo(f"    {attempt.channel}: {attempt.status} {attempt.error}".rstrip())
    except StoreUnavailable as exc:
        raise fail(f"search server unavailable: {exc}", EXIT_FAILED) from exc
    typer.echo(f"{len(found)} surges among {len(configured.surges)} surge rules", err=True)


@alerts_app.command("deliver")
def alerts_deliver(config: ConfigOpt = None) -> None:
    """Retry every delivery still owed (a channel that was down); exit 1 if some still fail."""
    from newsmon.pipeline.alerts.delivery import Deliverer
    from newsmon.pipeline.store import StoreUnavailable, open_store

    loaded = settings(config)
    store = open_store(loaded.search, loaded.state_dir)
    try:
        attempts = Deliverer(store, load_alerts(loaded)).deliver_pending()
    except StoreUnavailable as exc:
        raise fail(f"search server unavailable: {exc}", EXIT_FAILED) from exc
    for a in attempts:
        typer.echo(f"{a.channel}: {a.status} {a.error}".rstrip())
    typer.echo(f"{len(attempts)} delivery attempts", err=True)
    if any(a.status == "failed" for a in attempts):
        raise typer.Exit(EXIT_FAILED)


@alerts_app.command("list")
def alerts_list(
    config: ConfigOpt = None,
    since: common.SinceOpt = "24h",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Alerts raised in the window, newest first, with their delivery state."""
    from newsmon.pipeline.store import open_store

    loaded = settings(config)
    start, end = window(since, None)
    store = open_store(loaded.search, loaded.state_dir)
    docs = sorted(store.scan("alerts", since=start, until=end),
                  key=lambda d: str(d.get("created_at")), reverse=True)
    for doc in docs:
        if as_json:
            typer.echo(json.dumps(doc, ensure_ascii=False))
            continue
        state = " ".join(f"{key}={','.join(doc[key])}" for key in
                         ("notified", "pending", "failed", "throttled") if doc.get(key))
        typer.echo(f"{str(doc.get('created_at'))[:16]}  {doc.get('kind', 'story'):<5}  "
                   f"{doc.get('rule')}  {doc.get('title', '')[:90]}  [{state}]")
    typer.echo(f"{len(docs)} alerts", err=True)
