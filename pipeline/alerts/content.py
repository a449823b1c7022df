"""What an alert says, once, for every channel: :class:`AlertContent`.

:func:`story_content` turns a stored story alert and its article documents into the content
an analyst reads (sources with their labels, times, the lead, entities, the attribute, the
matched terms, two or three distinct evidence sentences with the terms marked);
:func:`surge_content` does the same for a surge. Each channel renders the same content in its
own form (Slack blocks, HTML and plain-text mail, Telegram HTML, console text, webhook JSON),
so a fact shown in one channel is in all of them. Pure: no store, no Beam, no network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from newsmon.models import Alert
from newsmon.pipeline.store import parse_time

JsonDict = dict[str, Any]

#: The webhook payload's schema version (docs/schema/webhook-v1.json).
SCHEMA_VERSION = 1

Event = Literal["alert.created", "alert.updated", "surge.created"]
EVENTS: tuple[Event, ...] = ("alert.created", "alert.updated", "surge.created")
#: What channels read by people get by default: a story once, and surges.
PEOPLE_EVENTS: tuple[Event, ...] = ("alert.created", "surge.created")

#: Evidence sentences per alert: two or three say why without becoming the article.
MAX_SENTENCES = 3
#: A sentence longer than this is cut around its first marked term, at word boundaries.
MAX_SENTENCE_CHARS = 280
#: The lead: the article's opening, cut at a word boundary.
MAX_LEAD_CHARS = 320
#: Article documents read for one alert (its first copies carry the evidence).
MAX_ARTICLES = 20

# A sentence ends at . ! ? … (optionally closed by a quote or bracket) before a space, or at
# a line break (feeds put headlines and paragraphs on lines of their own); abbreviations may
# split a sentence early, which costs context, never a term.
_SENTENCE_END = re.compile(r"(?<=[.!?…])([\"'”’»)\]]*)\s+|\s*\n\s*")


@dataclass(frozen=True)
class SourceInfo:
    """A source as an alert names it; the labels are None when the source has none."""

    id: str
    name: str
    kind: str | None = None
    country: str | None = None
    owner: str | None = None

    def as_json(self) -> JsonDict:
        return {"id": self.id, "name": self.name, "kind": self.kind, "country": self.country,
                "owner": self.owner}

    @property
    def label(self) -> str:
        """"Name (kind, country)" for people."""
        tags = [t for t in (self.kind, self.country) if t]
        return f"{self.name} ({', '.join(tags)})" if tags else self.name


@dataclass(frozen=True)
class Sentence:
    """An evidence sentence and the spans of its matched terms (offsets into ``text``)."""

    text: str
    marks: tuple[tuple[int, int], ...] = ()

    def as_json(self) -> JsonDict:
        return {"text": self.text, "marks": [list(m) for m in self.marks]}

    def marked(self, open_: str, close: str, escape: Any = str) -> str:
        """The text with each mark wrapped in ``open_``/``close``; ``escape`` applies to the
        text between (HTML escaping for HTML forms)."""
        out, pos = [], 0
        for start, end in self.marks:
            out += [escape(self.text[pos:start]), open_, escape(self.text[start:end]), close]
            pos = end
        out.append(escape(self.text[pos:]))
        return "".join(out)


@dataclass(frozen=True)
class AlertContent:
    """Everything an alert tells its readers; ``version`` grows with the story (new sources
    or languages), so a receiver can tell an update from a repeat."""

    kind: Literal["story", "surge"]
    alert_id: str
    rule: str
    topic: str
    topic_name: str
    title: str
    url: str
    version: int
    created_at: datetime
    updated_at: datetime
    story_id: str = ""
    lead: str = ""
    score: float = 0.0
    attribute: str | None = None
    published_at: datetime | None = None
    first_seen_at: datetime | None = None
    sources: tuple[SourceInfo, ...] = ()
    languages: tuple[str, ...] = ()
    matched_terms: tuple[str, ...] = ()
    entities: tuple[tuple[str, str], ...] = ()
    evidence: tuple[Sentence, ...] = ()
    doc_ids: tuple[str, ...] = ()
    #: Who reports it, for people ("3 sources: 2 wires (GB, FR), 1 Russian state-affiliated",
    #: pipeline/alerts/sources.py), and whether a corroboration the rule requires is met
    #: (None: the rule requires none).
    sources_line: str = ""
    corroborated: bool | None = None
    #: Surges only: the interval's count, its baseline and biggest stories.
    surge: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> JsonDict:
        """The alert object of the webhook payload (docs/schema/webhook-v1.json)."""
        out: JsonDict = {
            "kind": self.kind, "alert_id": self.alert_id, "rule": self.rule,
            "topic": {"id": self.topic, "name": self.topic_name},
            "title": self.title, "url": self.url, "version": self.version,
            "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
            "sources": [s.as_json() for s in self.sources],
            "languages": list(self.languages),
        }
        if self.kind == "surge":
            out["surge"] = dict(self.surge)
            return out
        out.update({
            "story_id": self.story_id, "lead": self.lead, "score": round(self.score, 3),
            "attribute": self.attribute,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "first_seen_at": self.first_seen_at.isoformat() if self.first_seen_at else None,
            "matched_terms": list(self.matched_terms),
            "entities": [{"kind": k, "name": n} for k, n in self.entities],
            "evidence": [s.as_json() for s in self.evidence],
            "doc_ids": list(self.doc_ids),
            "sources_line": self.sources_line,
            "corroborated": self.corroborated,
        })
        return out

    @property
    def subject(self) -> str:
        if self.kind == "surge":
            return f"Surge in {self.topic_name}: {self.title}"
        return f"{self.topic_name}: {self.title or self.url}"

    def facts(self) -> list[tuple[str, str]]:
        """(label, value) lines every human form shows, in this order; empty values left out."""
        who = ("CORROBORATED · " if self.corroborated else "") + self.sources_line
        rows = [
            ("Reported by", who),
            ("Sources", "; ".join(s.label for s in self.sources)),
            ("Languages", ", ".join(self.languages)),
        ]
        if self.kind == "surge":
            s = self.surge
            rows += [("Baseline", f"{float(s.get('baseline_mean') or 0):.1f} ± "
                                  f"{float(s.get('baseline_std') or 0):.1f} per interval")]
            return [(k, v) for k, v in rows if v]
        rows += [
            ("Published", _when(self.published_at)),
            ("First seen", _when(self.first_seen_at)),
            ("Attribute", self.attribute or ""),
            ("Matched", ", ".join(self.matched_terms)),
            ("Entities", ", ".join(n for _, n in self.entities)),
            ("Score", f"{self.score:.2f}"),
        ]
        return [(k, v) for k, v in rows if v]


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else ""


def topic_display_name(topic: str, names: Mapping[str, str] | None = None) -> str:
    """The topic as people read it: its configured name, else the id in words
    (``long_range_strike`` -> ``Long range strike``)."""
    if names and names.get(topic):
        return names[topic]
    words = topic.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else topic


def story_version(doc: Mapping[str, Any]) -> int:
    """The story's growth: 1 for its first source in one language, one more per source or
    language it gained. Merges only add, so a later version means the story grew."""
    sources = set(doc.get("source_ids") or ())
    languages = set(doc.get("languages") or ())
    return max(1, len(sources) + len(languages) - 1)


# --- text -------------------------------------------------------------------------------------


def cut_words(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, cut at a word boundary with a
    separate ellipsis (never inside a word)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    head = flat[: limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > 0 else head).rstrip(" ,;:") + " …"


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The (start, end) of each sentence of ``text``, surrounding space excluded."""
    spans, pos = [], 0
    for m in [*_SENTENCE_END.finditer(text), None]:
        # The closing quote or bracket stays with its sentence.
        end = m.start() + len(m.group(1) or "") if m is not None else len(text)
        chunk = text[pos:end]
        stripped = chunk.strip()
        if stripped:
            start = pos + (len(chunk) - len(chunk.lstrip()))
            spans.append((start, start + len(stripped)))
        if m is not None:
            pos = m.end()
    return spans


def _window(text: str, marks: list[tuple[int, int]], limit: int) -> Sentence:
    """The sentence ``text`` with ``marks``, whitespace flattened, cut to ``limit``
    characters around its first mark at word boundaries."""
    # Flatten whitespace, carrying the marks along.
    out: list[str] = []
    index = []  # new offset of every old offset
    prev_space = True
    for ch in text:
        index.append(len(out))
        if ch.isspace():
            if not prev_space:
                out.append(" ")
            prev_space = True
        else:
            out.append(ch)
            prev_space = False
    index.append(len(out))
    flat = "".join(out).rstrip()
    spans = sorted((index[s], min(index[e], len(flat))) for s, e in marks)
    if len(flat) <= limit:
        return Sentence(flat, _disjoint(spans))
    first = spans[0][0] if spans else 0
    start = max(0, first - limit // 3)
    if start:
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < first else start
        while start > 0 and not flat[start - 1].isspace():
            start -= 1  # never begin inside the word holding the first mark
    end = min(len(flat), start + limit)
    if end < len(flat):
        space = flat.rfind(" ", start, end)
        end = space if space > first else end
    body = flat[start:end].strip()
    lead_in = flat[start: start + 1] != body[:1]
    shift = start + (1 if lead_in else 0)
    prefix = "… " if start else ""
    suffix = " …" if end < len(flat) else ""
    moved = [(s - shift + len(prefix), e - shift + len(prefix)) for s, e in spans
             if s >= shift and e <= shift + len(body)]
    return Sentence(prefix + body + suffix, _disjoint(moved))


def _disjoint(spans: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def evidence_sentences(title: str, text: str, spans: Iterable[tuple[int, int]],
                       words: Iterable[str] = (), limit: int = MAX_SENTENCES) -> list[Sentence]:
    """Up to ``limit`` distinct sentences of ``text`` holding matched spans, most marks first.

    ``spans`` are the matcher's evidence offsets into ``title + "\\n\\n" + text`` (or into
    ``text`` when the title is empty, see ``Classifier.classify``): spans in the title are
    dropped, and so is a sentence that only repeats the title. The matcher keeps a bounded
    number of spans, so ``words`` (the matched words as written) are marked wherever they
    occur too.
    """
    offset = len(title) + 2 if title else 0
    body_spans = [(s - offset, e - offset) for s, e in spans if s >= offset and e > s]
    body_spans += _occurrences(text, words)
    title_key = _norm(title)
    found: dict[str, tuple[int, int, Sentence]] = {}
    for rank, (start, end) in enumerate(sentence_spans(text)):
        inside = [(s - start, e - start) for s, e in body_spans if s >= start and e <= end]
        if not inside:
            continue
        sentence = _window(text[start:end], inside, MAX_SENTENCE_CHARS)
        key = _norm(sentence.text)
        if not key or key == title_key or key in found:
            continue
        found[key] = (-len(inside), rank, sentence)
    best = sorted(found.values(), key=lambda t: (t[0], t[1]))[:limit]
    return [s for _, _, s in sorted(best, key=lambda t: t[1])]


def _occurrences(text: str, words: Iterable[str]) -> list[tuple[int, int]]:
    """Where each of ``words`` occurs in ``text`` as a whole word, any case."""
    alternatives = sorted({re.escape(w) for w in words if w.strip()}, key=len, reverse=True)
    if not alternatives:
        return []
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def lead_of(title: str, text: str) -> str:
    """The article's opening as a lead: the text without a first line that repeats the
    title, cut at a word boundary."""
    body = text.strip()
    first, _, rest = body.partition("\n")
    if title and _norm(first) == _norm(title):
        body = rest.strip()
    return cut_words(body, MAX_LEAD_CHARS)


def _snippet_sentences(title: str, snippets: Iterable[str]) -> list[Sentence]:
    """Evidence from the alert's own snippets, when its articles cannot be read: the
    matcher's ellipses and cut words dropped, repeats and the title left out."""
    title_key = _norm(title)
    found: dict[str, Sentence] = {}
    for snippet in snippets:
        text = snippet.strip()
        if text.startswith("…"):
            text = text[1:].split(" ", 1)[1] if " " in text else ""  # the cut first word
        if text.endswith("…"):
            text = text[:-1].rsplit(" ", 1)[0] if " " in text else ""
        text = cut_words(text, MAX_SENTENCE_CHARS)
        key = _norm(text)
        if key and key != title_key and key not in found:
            found[key] = Sentence(text)
    return list(found.values())[:MAX_SENTENCES]


# --- building the content ---------------------------------------------------------------------


def source_info(article: Mapping[str, Any]) -> SourceInfo:
    """The source of a stored article document, its labels read where present (top-level
    ``source_kind``/``source_country``/``source_owner``, else on ``source``)."""
    source = article.get("source") or {}

    def label(name: str) -> str | None:
        value = article.get(f"source_{name}") or source.get(name)
        return str(value) if value else None

    source_id = str(source.get("id", ""))
    return SourceInfo(id=source_id, name=str(source.get("name") or source_id),
                      kind=label("kind"), country=label("country"), owner=label("owner"))


def matched_words(articles: Iterable[Mapping[str, Any]], topic: str,
                  limit: int = 12) -> list[str]:
    """The words that matched, as the articles wrote them (the rules' patterns, ``allow*``,
    mean little to a reader), first seen first, each once whatever its case."""
    words: dict[str, str] = {}
    for art in articles:
        title, text = str(art.get("title", "")), str(art.get("text", ""))
        document = f"{title}\n\n{text}" if title else text
        for ev in _topic_of(art, topic).get("evidence") or ():
            word = " ".join(document[int(ev["start"]):int(ev["end"])].split())
            if word:
                words.setdefault(word.casefold(), word)
    return list(words.values())[:limit]


def _topic_of(article: Mapping[str, Any], topic: str) -> Mapping[str, Any]:
    """The article document's match for ``topic`` ({} if none)."""
    return next((t for t in article.get("topics") or () if t.get("topic") == topic), {})


def story_content(doc: Mapping[str, Any], articles: Sequence[Mapping[str, Any]],
                  topic_names: Mapping[str, str] | None = None) -> AlertContent:
    """The content of a stored story alert, from its document and its article documents
    (any order; missing ones are skipped, the alert's own fields filling in)."""
    fields = {k: v for k, v in doc.items() if k in Alert.model_fields}
    alert = Alert.model_validate(fields)
    order = {d: i for i, d in enumerate(alert.doc_ids)}
    arts = sorted((a for a in articles if a.get("doc_id") in order),
                  key=lambda a: order[str(a["doc_id"])])
    first = arts[0] if arts else {}
    match = next((m for m in (_topic_of(a, alert.topic) for a in arts) if m), {})
    sources: dict[str, SourceInfo] = {}
    for art in arts:
        info = source_info(art)
        sources.setdefault(info.id, info)
    for source_id in alert.source_ids:
        sources.setdefault(source_id, SourceInfo(id=source_id, name=source_id))
    entities = list(dict.fromkeys((str(e.get("kind")), str(e.get("name")))
                                  for a in arts for e in a.get("entities") or ()))
    evidence = list(alert.evidence)
    terms = matched_words(arts, alert.topic) or list(dict.fromkeys(ev.term for ev in evidence))
    sentences: list[Sentence] = []
    for art in arts:
        topic = _topic_of(art, alert.topic)
        spans = [(int(e["start"]), int(e["end"])) for e in topic.get("evidence") or ()]
        known = {_norm(s.text) for s in sentences}
        sentences += [s for s in evidence_sentences(str(art.get("title", "")),
                                                    str(art.get("text", "")), spans, terms)
                      if _norm(s.text) not in known]
        if len(sentences) >= MAX_SENTENCES:
            break
    if not sentences:
        sentences = _snippet_sentences(alert.title, (ev.snippet for ev in evidence))
    seen = [parse_time(a["first_seen_at"]) for a in arts if a.get("first_seen_at")]
    return AlertContent(
        kind="story", alert_id=alert.alert_id, rule=alert.rule, topic=alert.topic,
        topic_name=topic_display_name(alert.topic, topic_names), title=alert.title,
        url=alert.url, version=story_version(doc), created_at=alert.created_at,
        updated_at=alert.updated_at, story_id=alert.story_id,
        lead=lead_of(alert.title, str(first.get("text", ""))), score=alert.score,
        attribute=match.get("attribute"),
        published_at=parse_time(first["published_at"]) if first.get("published_at") else None,
        first_seen_at=min(seen) if seen else None,
        sources=tuple(sources[s] for s in sorted(sources, key=lambda s: sources[s].name)),
        languages=alert.languages, matched_terms=tuple(terms), entities=tuple(entities),
        evidence=tuple(sentences[:MAX_SENTENCES]), doc_ids=alert.doc_ids,
        sources_line=str(doc.get("sources_line") or ""),
        corroborated=(alert.corroborated if alert.corroboration is not None
                      and alert.corroboration.required else None))


def surge_content(doc: Mapping[str, Any],
                  topic_names: Mapping[str, str] | None = None) -> AlertContent:
    """The content of a stored surge alert."""
    topic = str(doc.get("topic", ""))
    stories = [{"story_id": str(s.get("story_id", "")), "title": str(s.get("title", "")),
                "url": str(s.get("url", "")), "count": int(s.get("count", 1))}
               for s in doc.get("top_stories") or ()]
    surge = {k: doc.get(k) for k in ("interval_start", "interval_end", "count",
                                     "baseline_mean", "baseline_std", "expected_max")}
    surge["top_stories"] = stories
    created = parse_time(str(doc["created_at"]))
    start = doc.get("interval_start")
    since = f" from {parse_time(str(start)):%Y-%m-%d %H:%M} UTC" if start else ""
    # The title says it in words; the stored one names the topic by its id.
    title = (f"{int(doc.get('count') or 0)} articles{since} (usually up to "
             f"{float(doc.get('expected_max') or 0):.1f})")
    return AlertContent(
        kind="surge", alert_id=str(doc["alert_id"]), rule=str(doc.get("rule", "")),
        topic=topic, topic_name=topic_display_name(topic, topic_names),
        title=title, url=str(doc.get("url", "")), version=1,
        created_at=created, updated_at=parse_time(str(doc.get("updated_at") or created)),
        sources=tuple(SourceInfo(id=str(s), name=str(s)) for s in doc.get("source_ids") or ()),
        languages=tuple(doc.get("languages") or ()), surge=surge)


# --- the plain-text form (console, the mail's text part) -------------------------------------


def plain_text(content: AlertContent) -> str:
    """The alert as plain text: subject, link, facts, lead and evidence (terms in «»)."""
    lines = [f"[newsmon] {content.subject}"]
    if content.url:
        lines.append(content.url)
    lines += [f"{label}: {value}" for label, value in content.facts()]
    if content.lead:
        lines += ["", content.lead]
    if content.evidence:
        lines += ["", "Evidence:"]
        lines += [f"  - {s.marked('«', '»')}" for s in content.evidence]
    for story in content.surge.get("top_stories", ())[:5]:
        lines.append(f"  {story['count']}× {story['title']} {story['url']}".rstrip())
    return "\n".join(lines)
