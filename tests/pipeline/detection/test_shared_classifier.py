"""Classifier.shared: one classifier per rule file per process, rebuilt when a file changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from newsmon.configfile import ConfigError
from newsmon.pipeline.detection import Classifier
from newsmon.pipeline.detection.schema import rule_files

RULES = """\
terms: terms
groups:
  war: {}
topics:
  t:
    rules:
      - {id: r, anchor: war}
"""


def rules(tmp_path: Path, word: str) -> Path:
    (tmp_path / "terms").mkdir(exist_ok=True)
    (tmp_path / "terms" / "en.yaml").write_text(f"groups:\n  war: {{{word}: 1.0}}\n")
    path = tmp_path / "topics.yaml"
    path.write_text(RULES)
    return path


def topics(classifier: Classifier, text: str) -> set[str]:
    return {m.topic for m in classifier.classify(text, "en").topics}


def test_the_same_rule_file_gives_the_same_classifier(tmp_path: Path) -> None:
    path = rules(tmp_path, "shelling")
    first = Classifier.shared(path)
    assert Classifier.shared(tmp_path / "." / "topics.yaml") is first
    assert topics(first, "Heavy shelling overnight.") == {"t"}


def test_a_changed_term_file_builds_a_new_classifier(tmp_path: Path) -> None:
    path = rules(tmp_path, "shelling")
    first = Classifier.shared(path)
    term_file = tmp_path / "terms" / "en.yaml"
    term_file.write_text("groups:\n  war: {airstrike: 1.0}\n")
    # A coarse file-system clock could leave the mtime as it was: move it on explicitly.
    stat = term_file.stat()
    os.utime(term_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = Classifier.shared(path)
    assert second is not first
    assert topics(second, "An airstrike overnight.") == {"t"}
    assert topics(second, "Heavy shelling overnight.") == set()


def test_a_new_term_file_builds_a_new_classifier(tmp_path: Path) -> None:
    path = rules(tmp_path, "shelling")
    first = Classifier.shared(path)
    (tmp_path / "terms" / "de.yaml").write_text("groups:\n  war: {beschuss: 1.0}\n")
    assert Classifier.shared(path) is not first
    assert rule_files(path) == [path, tmp_path / "terms" / "de.yaml",
                                tmp_path / "terms" / "en.yaml"]


def test_a_missing_rule_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Classifier.shared(tmp_path / "nothing.yaml")
