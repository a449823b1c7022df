"""GDELT 2.0 files as data, no I/O: ``lastupdate.txt``, the zip archives (bounded), and the
tab-separated rows of the Event export, Mentions and GKG 2.1 files, matched against a filter.

The column layouts are GDELT's documented ones (GDELT 2.0 Event Database Data Format Codebook,
GDELT Global Knowledge Graph Codebook V2.1): no header line, one record per line, tab
separated. Only the columns a filter or an item needs are read; a row with the wrong number of
columns, or whose URL or date cannot be read, is a :class:`BadRow` (a dead letter of its own)
and the rows after it go on.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Literal

from pydantic import field_validator, model_validator

from newsmon.config import StrictModel
from newsmon.values import http_url_problem

FileKind = Literal["export", "mentions", "gkg"]
#: The order a batch is read in: mentions name the events of the export by id.
FILE_KINDS: tuple[FileKind, ...] = ("export", "mentions", "gkg")

#: Columns per layout (Event 2.0 export: SOURCEURL is the 61st; Mentions: 16; GKG 2.1: 27).
EXPORT_COLUMNS = 61
MENTIONS_COLUMNS = 16
GKG_COLUMNS = 27

# Event 2.0 export (0-based).
_EV_ID = 0
_EV_ACTOR_CODES = (5, 15)
_EV_ACTOR_NAMES = (6, 16)
_EV_ACTOR_COUNTRIES = (7, 17)
_EV_GEO_NAMES = (36, 44, 52)
_EV_GEO_COUNTRIES = (37, 45, 53)
_EV_DATEADDED = 59
_EV_SOURCEURL = 60
# Mentions.
_MN_EVENT_ID = 0
_MN_TIME = 2
_MN_TYPE = 3
_MN_IDENTIFIER = 5
_MN_WEB = "1"  # MentionType 1: a web page, MentionIdentifier is its URL
# GKG 2.1.
_GKG_DATE = 1
_GKG_COLLECTION = 2
_GKG_DOCUMENT = 4
_GKG_THEMES = 7
_GKG_V2_THEMES = 8
_GKG_LOCATIONS = 9
_GKG_V2_LOCATIONS = 10
_GKG_PERSONS = 11
_GKG_V2_PERSONS = 12
_GKG_ORGS = 13
_GKG_V2_ORGS = 14
_GKG_ALL_NAMES = 23
_GKG_WEB = "1"  # V2SourceCollectionIdentifier 1: WEB, DocumentIdentifier is a URL

_LASTUPDATE_LINE = re.compile(r"^(\d{1,12}) ([0-9a-f]{32}) (\S+)$")
#: ``20150218230000.export.CSV.zip``; the translingual stream's are ``<stamp>.translation.*``.
_FILE_NAME = re.compile(r"/(\d{14})\.(?:translation\.)?(export|mentions|gkg)\.csv\.zip$",
                        re.IGNORECASE)
_TIMESTAMP = re.compile(r"^\d{14}$")
#: A row longer than this is no GDELT row (GKG rows with their GCAM scores reach tens of KB).
MAX_ROW_CHARS = 1_000_000


class GdeltFilter(StrictModel):
    """Which rows become candidate articles: a row matches when any listed term matches (terms
    are case-insensitive). An empty filter is refused: GDELT lists a few hundred thousand
    articles a day, and fetching them all is no monitoring.

    - ``themes``: GKG theme codes (``ARMEDCONFLICT``), or prefixes ending in ``*``
      (``TAX_WEAPONS_*``);
    - ``countries``: country codes as GDELT writes them: FIPS 10-4 in locations (``UP``:
      Ukraine), CAMEO in event actors (``UKR``);
    - ``locations``: words in location names (``Kharkiv``);
    - ``actors``: words in event actor names and codes, GKG persons and organizations;
    - ``keywords``: words in the article URL and in every name the row carries.
    """

    themes: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()

    @field_validator("themes", "countries", "locations", "actors", "keywords")
    @classmethod
    def _terms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        terms = tuple(term.strip().lower() for term in value)
        if any(not term or len(term) > 200 for term in terms):
            raise ValueError("terms must be 1-200 characters, not blank")
        return terms

    @model_validator(mode="after")
    def _not_empty(self) -> GdeltFilter:
        if not (self.themes or self.countries or self.locations or self.actors or self.keywords):
            raise ValueError("name at least one of themes, countries, locations, actors,"
                             " keywords: an empty filter would fetch every article GDELT lists")
        return self

    def matches(self, row: RowFacts) -> list[str]:
        """What in ``row`` matched (``theme:ARMEDCONFLICT``...), empty when nothing did."""
        hits: list[str] = []
        for theme in row.themes:
            low = theme.lower()
            if any(low == t or (t.endswith("*") and low.startswith(t[:-1])) for t in self.themes):
                hits.append(f"theme:{theme}")
        hits += [f"country:{c}" for c in row.countries if c in self.countries]
        hits += [f"location:{t}" for t in self.locations if any(t in n for n in row.locations)]
        hits += [f"actor:{t}" for t in self.actors if any(t in n for n in row.actors)]
        text = " ".join((row.url, *row.locations, *row.actors, *row.names))
        hits += [f"keyword:{t}" for t in self.keywords if t in text]
        return hits


@dataclass(frozen=True)
class RowFacts:
    """What a filter looks at in one row, lower case (themes upper case, as GDELT codes)."""

    url: str
    themes: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Listed:
    """One file of ``lastupdate.txt``."""

    kind: FileKind
    size: int
    md5: str
    url: str
    #: The batch it belongs to, YYYYMMDDHHMMSS (UTC) as an int: the source's cursor.
    stamp: int


@dataclass(frozen=True)
class LastUpdate:
    files: tuple[Listed, ...]
    #: Lines that are not ``size md5 URL`` of a GDELT file.
    bad_lines: tuple[str, ...] = ()

    @property
    def stamp(self) -> int | None:
        """The newest batch listed, or None when no line was readable."""
        return max((f.stamp for f in self.files), default=None)


def parse_lastupdate(text: str) -> LastUpdate:
    """``lastupdate.txt``: one ``<size> <md5> <URL>`` line per file of the newest batch."""
    files: list[Listed] = []
    bad: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        found = _LASTUPDATE_LINE.match(line)
        name = _FILE_NAME.search(found.group(3)) if found else None
        if found is None or name is None or http_url_problem(found.group(3)):
            bad.append(line[:300])
            continue
        kind: FileKind = name.group(2).lower()  # type: ignore[assignment]  # the regex's three
        files.append(Listed(kind=kind, size=int(found.group(1)), md5=found.group(2),
                            url=found.group(3), stamp=int(name.group(1))))
    return LastUpdate(tuple(files), tuple(bad))


class BadFile(ValueError):
    """An archive that is not read at all: not a zip, not one member, over a limit."""


class _Budget(io.RawIOBase):
    """A zip member read through a byte budget: the declared sizes of a zip may lie, so what
    is actually inflated is counted and reading stops past ``limit``."""

    def __init__(self, member: IO[bytes], limit: int) -> None:
        self.member = member
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.member.read(min(len(buffer), 1 << 16))
        self.left -= len(data)
        if self.left < 0:
            raise BadFile("inflates past the size limit")
        buffer[: len(data)] = data
        return len(data)


def zip_lines(content: bytes, *, max_bytes: int, max_ratio: int) -> Iterator[str]:
    """The lines of the one member of a GDELT zip, streamed (never the whole text in memory),
    decoded as UTF-8 with invalid bytes replaced. Raises :class:`BadFile` for an archive that
    is not a zip, has not exactly one member, is encrypted or uses an unknown compression, or
    inflates past ``max_bytes`` or ``max_ratio`` times its compressed size (zip bombs); the
    lines already yielded stand. A line longer than :data:`MAX_ROW_CHARS` is yielded cut."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1:
            raise BadFile(f"{len(members)} members, a GDELT archive has one")
        member = members[0]
        if member.file_size > max_bytes:
            raise BadFile(f"{member.file_size} bytes declared, over the limit of {max_bytes}")
        if member.file_size > max_ratio * max(member.compress_size, 1):
            raise BadFile(f"compression ratio over {max_ratio}: {member.compress_size} ->"
                          f" {member.file_size} bytes")
        with archive.open(member) as raw:
            budget = _Budget(raw, min(max_bytes, max_ratio * max(member.compress_size, 1)))
            text = io.TextIOWrapper(io.BufferedReader(budget), encoding="utf-8",
                                    errors="replace", newline="\n")
            while line := text.readline(MAX_ROW_CHARS):
                yield line.rstrip("\r\n")
    except BadFile:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            OSError, ValueError) as exc:
        # RuntimeError: encrypted; NotImplementedError: a compression zipfile lacks.
        raise BadFile(f"{type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class BadRow:
    """A row that could not be read: which file, which line, why, and its start."""

    kind: FileKind
    line: int
    reason: str
    excerpt: str


@dataclass(frozen=True)
class Candidate:
    """An article URL a row of the batch named and the filter kept."""

    url: str
    published_at: datetime | None
    kind: FileKind
    matched: tuple[str, ...]


@dataclass
class BatchRows:
    """What the rows of one batch gave: candidates by URL (first row wins), the rows that
    could not be read, how many rows the filter passed over, and the ids of matched events
    (whose mentions are candidates too)."""

    candidates: dict[str, Candidate] = field(default_factory=dict)
    bad: list[BadRow] = field(default_factory=list)
    skipped: int = 0
    events: set[str] = field(default_factory=set)


def _stamp_time(value: str) -> datetime:
    if not _TIMESTAMP.match(value):
        raise ValueError(f"date {value[:20]!r} is not YYYYMMDDHHMMSS")
    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def _url(value: str) -> str:
    if problem := http_url_problem(value):
        raise ValueError(f"URL {value[:200]!r}: {problem}")
    return value


def _entries(value: str, sep: str = ";") -> list[str]:
    return [entry for entry in value.split(sep) if entry]


def _named(value: str) -> tuple[str, ...]:
    """Names of a V2 enhanced field (``name,offset;...``), lower case."""
    return tuple(entry.rpartition(",")[0].lower() or entry.lower() for entry in _entries(value))


def _export_facts(cols: list[str]) -> RowFacts:
    return RowFacts(
        url=_url(cols[_EV_SOURCEURL]).lower(),
        countries=tuple(cols[i].lower() for i in (*_EV_ACTOR_COUNTRIES, *_EV_GEO_COUNTRIES)
                        if cols[i]),
        locations=tuple(cols[i].lower() for i in _EV_GEO_NAMES if cols[i]),
        actors=tuple(cols[i].lower() for i in (*_EV_ACTOR_NAMES, *_EV_ACTOR_CODES) if cols[i]),
    )


def _gkg_facts(cols: list[str]) -> RowFacts:
    themes = {entry.rpartition(",")[0] or entry for entry in _entries(cols[_GKG_V2_THEMES])}
    themes.update(_entries(cols[_GKG_THEMES]))
    locations: list[str] = []
    countries: list[str] = []
    # V1 "type#name#country#adm1#lat#long#feature"; V2 adds adm2 and the offset, same start.
    for entry in _entries(cols[_GKG_V2_LOCATIONS]) + _entries(cols[_GKG_LOCATIONS]):
        parts = entry.split("#")
        if len(parts) >= 3:
            locations.append(parts[1].lower())
            countries.append(parts[2].lower())
    actors = {*_named(cols[_GKG_V2_PERSONS]), *_named(cols[_GKG_V2_ORGS]),
              *(n.lower() for n in _entries(cols[_GKG_PERSONS])),
              *(n.lower() for n in _entries(cols[_GKG_ORGS]))}
    return RowFacts(
        url=_url(cols[_GKG_DOCUMENT]).lower(),
        themes=tuple(sorted(t.upper() for t in themes)),
        countries=tuple(dict.fromkeys(c for c in countries if c)),
        locations=tuple(dict.fromkeys(n for n in locations if n)),
        actors=tuple(sorted(actors)),
        names=_named(cols[_GKG_ALL_NAMES]),
    )


def read_rows(kind: FileKind, lines: Iterator[str], flt: GdeltFilter, batch: BatchRows) -> None:
    """Add the candidates of one file's ``lines`` to ``batch``. Mentions are candidates when
    they are web pages mentioning an event the export rows matched (read the export first).
    A row that cannot be read is a :class:`BadRow`; the rows after it go on. Raises
    :class:`BadFile` when the archive under ``lines`` does."""
    expected = {"export": EXPORT_COLUMNS, "mentions": MENTIONS_COLUMNS, "gkg": GKG_COLUMNS}[kind]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        try:
            if len(cols) != expected:
                raise ValueError(f"{len(cols)} columns, the {kind} layout has {expected}")
            found = _candidate(kind, cols, flt, batch)
        except ValueError as exc:
            batch.bad.append(BadRow(kind, number, str(exc), line[:300]))
            continue
        if found is None:
            batch.skipped += 1
        elif found.url not in batch.candidates:
            batch.candidates[found.url] = found


def _candidate(kind: FileKind, cols: list[str], flt: GdeltFilter,
               batch: BatchRows) -> Candidate | None:
    """The row's candidate, or None when it is not one; ValueError when it cannot be read."""
    if kind == "mentions":
        if cols[_MN_TYPE] != _MN_WEB or cols[_MN_EVENT_ID] not in batch.events:
            return None
        return Candidate(_url(cols[_MN_IDENTIFIER]), _stamp_time(cols[_MN_TIME]), kind,
                         (f"event:{cols[_MN_EVENT_ID]}",))
    if kind == "gkg":
        if cols[_GKG_COLLECTION] != _GKG_WEB:
            return None
        facts, url, date = _gkg_facts(cols), cols[_GKG_DOCUMENT], cols[_GKG_DATE]
    else:
        facts, url, date = _export_facts(cols), cols[_EV_SOURCEURL], cols[_EV_DATEADDED]
    published = _stamp_time(date)
    hits = flt.matches(facts)
    if not hits:
        return None
    if kind == "export":
        batch.events.add(cols[_EV_ID])
    return Candidate(url, published, kind, tuple(hits))
