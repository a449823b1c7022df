"""Types of the compiled detection core (src/lib.rs); pipeline/detection/matcher.py is its
only user and says what the arguments are."""

from collections.abc import Callable, Sequence

_Rows = tuple[list[int], list[int], list[int], list[int]]
_TopicResult = tuple[int, float, bool, list[int], list[tuple[int, int]], int]

class Engine:
    def __init__(
        self,
        patterns: list[str],
        entries: list[list[tuple[int, int, bool, bool, str | None, tuple[int, ...]]]],
        terms: list[tuple[bool, bool, int, bool, int, float]],
        topics: Sequence[tuple[object, ...]],
        groups: int,
        max_evidence: int,
    ) -> None: ...
    def find(
        self,
        text: str,
        spaced: str,
        only: list[int] | None,
        literal_ok: Callable[[int, int, int], bool],
    ) -> tuple[list[int], list[int], list[int], list[int]]: ...
    def classify(
        self,
        text: str,
        spaced: str,
        only: list[int] | None,
        literal_ok: Callable[[int, int, int], bool],
        locate: Callable[[], tuple[list[int], _Rows | None, _Rows | None]],
        uncovered: bool,
    ) -> tuple[list[int], list[int], list[int], list[int], list[_TopicResult]]: ...
    def evaluate(
        self,
        terms: list[int],
        starts: list[int],
        ends: list[int],
        words: list[int],
        sentences: list[int],
        uncovered: bool,
    ) -> list[_TopicResult]: ...

class Sentences:
    def __init__(
        self, classes: bytes, abbreviations: frozenset[str], is_abbreviation: Callable[[str], bool]
    ) -> None: ...
    def starts(self, original: str) -> list[int] | None: ...
