"""Scoring a classifier on labelled JSONL: reading records, the figures, the report shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsmon.models import Classification, TopicMatch
from newsmon.pipeline.detection.evaluation import (
    EvalRecord,
    RecordError,
    Scores,
    evaluate,
    read_records,
)


class KeywordClassifier:
    """Predicts a topic when its keyword is in the title or text; records what it was given."""

    def __init__(self, keywords: dict[str, str]) -> None:
        self.keywords = keywords
        self.seen: list[tuple[str, str | None, str]] = []

    def classify(self, text: str, lang: str | None = None, title: str = "") -> Classification:
        self.seen.append((text, lang, title))
        found = [t for t, k in self.keywords.items() if k in f"{title} {text}"]
        return Classification(topics=tuple(TopicMatch(topic=t, score=1.0) for t in found))


def write_jsonl(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "eval.jsonl"
    path.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8"
    )
    return path


def test_read_records_ids_titles_and_extra_keys(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path,
        [
            {"id": "a1", "lang": "de", "text": "x", "labels": ["t"], "url": "u", "reason": "r"},
            {"text": "y", "lang": "en", "title": "T", "labels": [], "hard_negative": True},
            {"id": 7, "text": "z"},
        ],
    )
    records = read_records(path)
    assert [r.id for r in records] == ["a1", "2", "7"]  # line number when there is no id
    assert records[0].labels == frozenset({"t"})
    assert records[1].title == "T"
    assert records[2].lang == ""


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path, [{"id": "ok", "text": "x"}, {"id": "bad", "labels": []}])
    with pytest.raises(RecordError, match=r"eval\.jsonl:2: text"):
        read_records(path)


def records() -> list[EvalRecord]:
    return [
        EvalRecord(id="1", lang="en", text="troops", labels=frozenset({"troops"})),
        EvalRecord(id="2", lang="en", text="troops", labels=frozenset()),
        EvalRecord(id="3", lang="de", text="nothing", labels=frozenset({"troops"})),
        EvalRecord(id="4", lang="de", text="truppen", labels=frozenset({"troops"})),
        EvalRecord(id="5", lang="de", title="missile", text="-", labels=frozenset({"strike"})),
    ]


def test_scores_per_topic_and_language() -> None:
    classifier = KeywordClassifier({"troops": "tr", "strike": "missile"})
    report = evaluate(classifier, records())
    troops = report.topics["troops"]
    # TP: 1, 4; FP: 2; FN: 3
    assert (troops.tp, troops.fp, troops.fn, troops.support) == (2, 1, 1, 3)
    assert troops.precision == pytest.approx(2 / 3, abs=1e-4)
    assert troops.recall == pytest.approx(2 / 3, abs=1e-4)
    assert troops.f1 == pytest.approx(2 / 3, abs=1e-4)
    assert report.topics["strike"].f1 == 1.0  # found through the title
    assert report.languages["de"]["troops"].recall == 0.5
    assert report.languages["en"]["troops"].precision == 0.5
    assert report.errors["troops"].false_positives == ("2",)
    assert report.errors["troops"].false_negatives == ("3",)
    assert ("-", "de", "missile") in classifier.seen


def test_empty_cases_do_not_read_as_failures() -> None:
    assert Scores.of(0, 0, 0).f1 == 1.0
    assert Scores.of(0, 2, 0).precision == 0.0
    assert Scores.of(0, 0, 3).recall == 0.0


def test_to_json_has_exactly_the_documented_shape() -> None:
    report = evaluate(KeywordClassifier({"troops": "tr"}), records(), topics=("troops", "strike"))
    data = report.to_json()
    assert set(data) == {"topics", "languages", "errors", "languages_without_rules", "review"}
    assert set(data["topics"]) == {"troops", "strike"}
    for scores in data["topics"].values():
        assert set(scores) == {"precision", "recall", "f1", "support"}
    assert set(data["languages"]) == {"en", "de"}
    assert data["errors"]["strike"] == {"false_positives": [], "false_negatives": ["5"]}
    json.dumps(data)


def test_format_text_lists_figures_and_wrong_ids() -> None:
    text = evaluate(KeywordClassifier({"troops": "tr"}), records()).format_text()
    assert "troops" in text
    assert "false positives: 2" in text
    assert "false negatives: 3" in text


class ReviewingClassifier(KeywordClassifier):
    """Flags "missile" texts for review instead of predicting them."""

    def classify(self, text: str, lang: str | None = None, title: str = "") -> Classification:
        found = super().classify(text, lang, title)
        flagged = (TopicMatch(topic="strike", score=0.5, review=True),) if "missile" in text else ()
        return Classification(topics=found.topics + flagged)


def test_review_flags_are_tallied_apart_and_uncovered_languages_listed() -> None:
    rows = [*records(),
            EvalRecord(id="6", lang="tl", text="missile", labels=frozenset({"strike"})),
            EvalRecord(id="7", lang="sw", text="missile", labels=frozenset())]
    report = evaluate(ReviewingClassifier({"troops": "tr"}), rows, topics=("troops", "strike"),
                      rule_languages=("en", "de"))
    assert report.languages_without_rules == ("sw", "tl")
    assert report.topics["strike"].tp == 0  # a flag is not a prediction
    assert report.review["strike"].flagged == 2
    assert report.review["strike"].labelled == 1
    data = report.to_json()
    assert data["languages_without_rules"] == ["sw", "tl"]
    assert data["review"] == {"strike": {"flagged": 2, "labelled": 1}}
    text = report.format_text()
    assert "languages without rules: sw, tl" in text
    assert "tl (no rules)" in text
    assert "strike review flags: 2 (1 on labelled records)" in text
