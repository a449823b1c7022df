"""Precision, recall and F1 of a classifier on labelled articles, per topic and per language.

Pure apart from ``read_records``, which reads a JSONL file of ``{"text", "lang", "labels"}``
lines (extra keys ignored; ``id`` used when present, else the line number; ``title`` passed to
the classifier when present). ``evaluate`` runs the classifier over the records and returns an
``EvalReport``; its ``to_json()`` is the shape ``newsmon eval --json`` prints.
"""

from __future__ import annotations

import pathlib
from collections.abc import Collection, Iterable, Sequence
from typing import Protocol, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from newsmon.models import Classification

__all__ = [
    "ErrorsJSON",
    "EvalRecord",
    "EvalReport",
    "RecordError",
    "ReportJSON",
    "ReviewTally",
    "Scores",
    "ScoresJSON",
    "TopicErrors",
    "evaluate",
    "read_records",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EvalRecord(_Frozen):
    id: str
    lang: str = ""
    title: str = ""
    text: str
    labels: frozenset[str] = frozenset()


class RecordError(ValueError):
    """A line of an evaluation file is not a usable record; names the file and line."""


class _Line(BaseModel):
    # Extra keys (url, hard_negative, reason, note...) are the annotator's, not ours.
    model_config = ConfigDict(extra="ignore")

    id: str | int | None = None
    lang: str | None = ""
    title: str | None = ""
    text: str
    labels: list[str] = Field(default_factory=list)


def read_records(path: pathlib.Path | str) -> list[EvalRecord]:
    """Read a JSONL evaluation file; blank lines are skipped, a bad line raises ``RecordError``."""
    path = pathlib.Path(path)
    records = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                parsed = _Line.model_validate_json(line)
            except ValidationError as exc:
                first = exc.errors()[0]
                key = ".".join(str(p) for p in first["loc"]) or "(line)"
                raise RecordError(f"{path}:{number}: {key}: {first['msg']}") from exc
            records.append(
                EvalRecord(
                    id=str(parsed.id) if parsed.id is not None else str(number),
                    lang=parsed.lang or "",
                    title=parsed.title or "",
                    text=parsed.text,
                    labels=frozenset(parsed.labels),
                )
            )
    return records


class Scores(_Frozen):
    precision: float
    recall: float
    f1: float
    #: How many records carry the label.
    support: int
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @staticmethod
    def of(tp: int, fp: int, fn: int) -> Scores:
        # With nothing predicted (or nothing to find) the ratio is taken as 1.0 when there was
        # also nothing to get wrong, so an empty language does not read as a failure.
        precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return Scores(
            precision=round(precision, 4),
            recall=round(recall, 4),
            f1=round(f1, 4),
            support=tp + fn,
            tp=tp,
            fp=fp,
            fn=fn,
        )

    def public(self) -> ScoresJSON:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
        }


class ScoresJSON(TypedDict):
    precision: float
    recall: float
    f1: float
    support: int


class ErrorsJSON(TypedDict):
    false_positives: list[str]
    false_negatives: list[str]


class ReviewJSON(TypedDict):
    flagged: int
    labelled: int


class ReportJSON(TypedDict):
    topics: dict[str, ScoresJSON]
    languages: dict[str, dict[str, ScoresJSON]]
    errors: dict[str, ErrorsJSON]
    languages_without_rules: list[str]
    review: dict[str, ReviewJSON]


class TopicErrors(_Frozen):
    false_positives: tuple[str, ...] = ()
    false_negatives: tuple[str, ...] = ()


class ReviewTally(_Frozen):
    """Review flags (``TopicMatch.review``): how many, and how many on labelled records."""

    flagged: int = 0
    labelled: int = 0


class EvalReport(_Frozen):
    topics: dict[str, Scores]
    languages: dict[str, dict[str, Scores]]
    errors: dict[str, TopicErrors]
    records: int
    #: Languages of the file that the rule file does not cover (when it was told which).
    languages_without_rules: tuple[str, ...] = ()
    #: Review flags per topic; they are not predictions and count in no figure above.
    review: dict[str, ReviewTally] = Field(default_factory=dict)

    def to_json(self) -> ReportJSON:
        """``{"topics": {t: {precision, recall, f1, support}}, "languages": {l: {t: ...}},
        "errors": {t: {"false_positives": [ids], "false_negatives": [ids]}},
        "languages_without_rules": [l], "review": {t: {"flagged": n, "labelled": n}}}``."""
        return {
            "topics": {t: s.public() for t, s in self.topics.items()},
            "languages": {
                lang: {t: s.public() for t, s in by_topic.items()}
                for lang, by_topic in self.languages.items()
            },
            "errors": {
                t: {
                    "false_positives": list(e.false_positives),
                    "false_negatives": list(e.false_negatives),
                }
                for t, e in self.errors.items()
            },
            "languages_without_rules": list(self.languages_without_rules),
            "review": {
                t: {"flagged": r.flagged, "labelled": r.labelled} for t, r in self.review.items()
            },
        }

    def format_text(self) -> str:
        """A table per topic and per language, then the ids that were wrong."""
        lines = [f"{self.records} records", ""]
        header = f"{'':<22} {'P':>6} {'R':>6} {'F1':>6} {'n':>5} {'TP':>4} {'FP':>4} {'FN':>4}"

        def row(label: str, s: Scores) -> str:
            return (
                f"{label:<22} {s.precision:>6.3f} {s.recall:>6.3f} {s.f1:>6.3f} {s.support:>5}"
                f" {s.tp:>4} {s.fp:>4} {s.fn:>4}"
            )

        lines.append(header)
        for topic, scores in self.topics.items():
            lines.append(row(topic, scores))
        uncovered = set(self.languages_without_rules)
        for topic in self.topics:
            lines += ["", f"{topic} by language", header]
            for lang, by_topic in self.languages.items():
                mark = " (no rules)" if lang in uncovered else ""
                lines.append(row((lang or "?") + mark, by_topic[topic]))
        lines.append("")
        lines.append(
            "languages without rules: " + (", ".join(self.languages_without_rules) or "-")
        )
        for topic, tally in self.review.items():
            lines.append(
                f"{topic} review flags: {tally.flagged} ({tally.labelled} on labelled records)"
            )
        for topic, errs in self.errors.items():
            lines.append("")
            lines.append(f"{topic} false positives: {', '.join(errs.false_positives) or '-'}")
            lines.append(f"{topic} false negatives: {', '.join(errs.false_negatives) or '-'}")
        return "\n".join(lines)


class _Classifies(Protocol):
    def classify(self, text: str, lang: str | None = None, title: str = "") -> Classification: ...


def evaluate(
    classifier: _Classifies,
    records: Iterable[EvalRecord],
    topics: Sequence[str] = (),
    rule_languages: Collection[str] | None = None,
) -> EvalReport:
    """Score ``classifier`` on ``records``.

    ``topics`` fixes the topics reported (default: every label seen and every topic predicted,
    sorted). A record counts once per topic: true positive when labelled and predicted. Review
    flags (matches with ``review=True``) are tallied apart, never as predictions. Given
    ``rule_languages``, the report lists the file's languages outside them.
    """
    outcomes: list[tuple[EvalRecord, frozenset[str]]] = []
    flags: list[tuple[EvalRecord, str]] = []
    for record in records:
        result = classifier.classify(record.text, record.lang or None, title=record.title)
        outcomes.append((record, frozenset(m.topic for m in result.topics if not m.review)))
        flags.extend((record, m.topic) for m in result.topics if m.review)
    names = list(topics) or sorted(
        {t for r, _ in outcomes for t in r.labels} | {t for _, p in outcomes for t in p}
    )
    # (topic, None) is the overall tally; (topic, lang) the per-language one.
    counts: dict[tuple[str, str | None], list[int]] = {}
    errors: dict[str, tuple[list[str], list[str]]] = {t: ([], []) for t in names}
    for record, predicted in outcomes:
        for topic in names:
            gold, guess = topic in record.labels, topic in predicted
            for key in ((topic, None), (topic, record.lang)):
                tally = counts.setdefault(key, [0, 0, 0])
                if gold and guess:
                    tally[0] += 1
                elif guess:
                    tally[1] += 1
                elif gold:
                    tally[2] += 1
            if guess and not gold:
                errors[topic][0].append(record.id)
            elif gold and not guess:
                errors[topic][1].append(record.id)
    langs = sorted({r.lang for r, _ in outcomes})
    review: dict[str, ReviewTally] = {}
    for record, topic in flags:
        seen = review.get(topic, ReviewTally())
        review[topic] = ReviewTally(
            flagged=seen.flagged + 1, labelled=seen.labelled + (topic in record.labels)
        )
    uncovered = (
        tuple(lang for lang in langs if lang not in rule_languages)
        if rule_languages is not None
        else ()
    )
    return EvalReport(
        topics={t: Scores.of(*counts.get((t, None), [0, 0, 0])) for t in names},
        languages={
            lang: {t: Scores.of(*counts.get((t, lang), [0, 0, 0])) for t in names} for lang in langs
        },
        errors={
            t: TopicErrors(false_positives=tuple(fp), false_negatives=tuple(fn))
            for t, (fp, fn) in errors.items()
        },
        records=len(outcomes),
        languages_without_rules=uncovered,
        review=review,
    )
