"""`newsmon classify` and `newsmon eval` on a file they cannot use: one line naming the file
(and the line, for JSON Lines), exit status 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsmon.cli import app

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "config" / "newsmon.yaml")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--config", CONFIG])
    # An exception other than the clean exit is what prints a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize("command", ["classify", "eval"])
def test_a_missing_file_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    code, out = run(command, str(missing))
    assert code == 2
    assert out.strip() == f"{missing}: cannot read: No such file or directory"


@pytest.mark.parametrize("command", ["classify", "eval"])
def test_a_file_that_is_not_utf8_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b'{"text": "ok"}\n\xff\xfe\x00garbage')
    code, out = run(command, str(binary))
    assert code == 2
    assert out.count("\n") == 1 and out.startswith(f"{binary}: cannot read: not UTF-8")


def test_a_malformed_eval_line_names_the_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "set.jsonl"
    bad.write_text('{"text": "a", "labels": []}\n\n{"text": "b", "labels": [\n', encoding="utf-8")
    code, out = run("eval", str(bad))
    assert code == 2
    assert out.count("\n") == 1 and out.startswith(f"{bad}:3: ")
    missing_text = tmp_path / "notext.jsonl"
    missing_text.write_text('{"labels": ["x"]}\n', encoding="utf-8")
    code, out = run("eval", str(missing_text))
    assert (code, out.count("\n")) == (2, 1) and out.startswith(f"{missing_text}:1: text: ")
