"""``newsmon classify`` and ``newsmon eval``: the topic rules on one text or a labelled set."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from newsmon.cli._common import EXIT_CONFIG, ConfigOpt, app, fail, settings
from newsmon.configfile import ConfigError


@app.command()
def classify(
    file: Annotated[str, typer.Argument(help="Text file to classify, or - for stdin.")],
    config: ConfigOpt = None,
    lang: Annotated[str | None, typer.Option(help="Language hint (ISO 639-1).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Classify one text: topics with score and evidence, and entities."""
    from newsmon.languages import detect_language
    from newsmon.pipeline.detection import Classifier

    loaded = settings(config)
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    try:
        classifier = Classifier.from_path(loaded.topics)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    result = classifier.classify(text, lang or detect_language(text))
    if as_json:
        payload = {
            "topics": [t.model_dump(mode="json") for t in result.topics],
            "entities": [e.model_dump(mode="json") for e in result.entities],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    if not result.topics:
        typer.echo("no topic")
    for t in result.topics:
        typer.echo(f"{t.topic}  score {t.score:.2f}  groups {', '.join(t.groups)}")
        for ev in t.evidence:
            typer.echo(f"   [{ev.start}:{ev.end}] {ev.group}: {ev.snippet}")
    if result.entities:
        typer.echo("entities: " + ", ".join(f"{e.name} ({e.kind})" for e in result.entities))


@app.command(name="eval")
def eval_command(
    file: Annotated[Path | None, typer.Argument(help="JSON Lines with text, lang, labels.")]
    = None,
    config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    feedback: Annotated[bool, typer.Option(
        "--feedback", help="Live precision per rule, language and source label from the "
        "inbox's labels (FILE: a `newsmon feedback export`; none: the store).")] = False,
) -> None:
    """Precision, recall and F1 per topic and per language, with the ids it got wrong, the
    file's languages that the rules do not cover, and the review flags raised."""
    if feedback:
        from newsmon.cli.feedback import eval_feedback

        return eval_feedback(file, config, as_json)
    if file is None:
        raise fail("eval needs a FILE (or --feedback)", EXIT_CONFIG)
    from newsmon.pipeline.detection import Classifier
    from newsmon.pipeline.detection.evaluation import evaluate, read_records

    loaded = settings(config)
    try:
        classifier = Classifier.from_path(loaded.topics)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_CONFIG) from exc
    from tqdm import tqdm

    # A bar on a terminal only (disable=None): piped or --json output stays clean.
    records = tqdm(read_records(file), desc="eval", unit="text", disable=None, leave=False)
    report = evaluate(classifier, records, rule_languages=classifier.rules.languages)
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        typer.echo(report.format_text())
