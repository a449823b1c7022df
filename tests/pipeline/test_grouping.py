"""Story grouping on the gold set (tests/gold/stories), through the bench's command line.

Runs ``bench/bench_grouping.py --method story --burst --json`` on all pairs and on each half
of the events (the weights of pipeline/story/match.py were fitted on "tune"; "test" was only
looked at to choose among signals and for the threshold, see the comment there), and holds
the figures reached so far as floors: pair precision and recall for each kind of pair, and
the grouping of the half's articles arriving at once (``--burst``). The issue's targets
(precision >= 0.95 and recall >= 0.80 for both kinds of pair) are not reached yet: the test
that asserts them is a strict xfail, so it turns red, as it should, the day they are met and
the floors here can be raised to them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "bench_grouping.py"

#: Figures measured when the floors were set (docs/detection.md, "Story grouping across
#: languages", has them), minus a little room; a change that loses more than that is a
#: regression.
FLOORS = {
    "all": {"cross_precision": 0.90, "cross_recall": 0.28,
            "same_precision": 0.94, "same_recall": 0.48,
            "burst_precision": 0.71, "burst_recall": 0.31},
    "tune": {"cross_precision": 0.97, "cross_recall": 0.22,
             "same_precision": 0.93, "same_recall": 0.45,
             "burst_precision": 0.78, "burst_recall": 0.24},
    "test": {"cross_precision": 0.93, "cross_recall": 0.35,
             "same_precision": 0.97, "same_recall": 0.55,
             "burst_precision": 0.92, "burst_recall": 0.36},
}
TARGET_PRECISION, TARGET_RECALL = 0.95, 0.80


def run_bench(method: str, split: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--method", method, "--split", split, "--json",
         *(["--burst"] if method == "story" else [])],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def figures() -> dict[str, dict[str, float]]:
    return {split: run_bench("story", split) for split in FLOORS}


@pytest.mark.parametrize("split", sorted(FLOORS))
def test_story_grouping_holds_its_floors(figures: dict[str, dict[str, float]], split: str) -> None:
    got = figures[split]
    low = {key: (got[key], floor) for key, floor in FLOORS[split].items()
           if got[key] is None or got[key] < floor}
    assert not low, f"{split}: below the floor (got, floor): {low}"


def test_story_grouping_beats_minhash_across_languages() -> None:
    """MinHash of word bigrams never joins two languages; the story features must."""
    minhash = run_bench("minhash", "all")
    assert minhash["cross_recall"] == 0.0
    assert minhash["same_recall"] < 0.2


@pytest.mark.xfail(strict=True, reason="issue 15 targets not reached yet: see "
                   "docs/detection.md (Story grouping) for the figures and what is missed")
def test_story_grouping_meets_the_issue_targets(figures: dict[str, dict[str, float]]) -> None:
    got = figures["all"]
    assert got["cross_precision"] >= TARGET_PRECISION
    assert got["same_precision"] >= TARGET_PRECISION
    assert got["cross_recall"] >= TARGET_RECALL
    assert got["same_recall"] >= TARGET_RECALL


def test_the_weights_in_the_code_are_the_fit() -> None:
    """pipeline/story/match.py carries the weights ``bench_grouping.py --fit`` gives on the
    tune pairs: a change to a signal or to the gold set that moves the fit must refit them
    (and revisit the threshold), not leave weights fitted to other signals."""
    from newsmon.pipeline.story import BIAS, SIGNALS, WEIGHTS

    proc = subprocess.run([sys.executable, str(BENCH), "--fit"], capture_output=True,
                          text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    fitted = dict(line.split() for line in proc.stdout.splitlines()[1:])
    assert list(fitted) == [*SIGNALS, "bias"]
    assert [float(fitted[name]) for name in SIGNALS] == pytest.approx(WEIGHTS)
    assert float(fitted["bias"]) == pytest.approx(BIAS)


def test_explain_accounts_for_every_wrong_pair() -> None:
    """``--explain`` lists each missed pair and false join once, and its counts of the misses
    by what they lack add up to the misses in the table."""
    proc = subprocess.run([sys.executable, str(BENCH), "--method", "story", "--split", "test",
                           "--explain", "--json"], capture_output=True, text=True, check=False,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    missed = [line for line in lines if line.startswith("missed")]
    joined = [line for line in lines if line.startswith("false join")]
    counted = sum(int(line.split()[0]) for line in lines
                  if line.strip() and line.split()[0].isdigit() and "language:" in line)
    table = {line.split()[0]: line.split() for line in lines
             if line.startswith(("cross-language ", "same-language "))}
    fn = sum(int(row[4]) for row in table.values())
    fp = sum(int(row[3]) for row in table.values())
    assert missed and len(missed) == counted == fn
    assert len(joined) == fp
