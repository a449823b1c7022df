"""The batched stages that place and write articles: story grouping and the bulk write."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from newsmon import metrics
from newsmon.models import Article, Classification
from newsmon.pipeline import stories as dedup
from newsmon.pipeline.detection import Classifier
from newsmon.pipeline.normalize import text_hash
from newsmon.pipeline.stages.base import EstimatedPickleCoder, StoreFn, count, dead
from newsmon.pipeline.stages.items import ArticleCoder
from newsmon.pipeline.store.base import DocumentStore
from newsmon.pipeline.story import StoryFeatures, StoryMatcher


@dataclass(frozen=True)
class Placed:
    """An article after story grouping, with what the store needs to find it again."""

    article: Article
    fingerprint: dedup.Fingerprint
    duplicate_of: str | None


class PlacedCoder(EstimatedPickleCoder):
    """Placed articles between stages (see EstimatedPickleCoder)."""

    #: A pickled fingerprint's bytes (signature, hashes, story features), about what the
    #: bench's articles measure.
    FINGERPRINT = 1700

    def estimate_size(self, value: Any) -> int:
        return ArticleCoder().estimate_size(value.article) + self.FINGERPRINT

    def to_type_hint(self) -> type:
        return Placed


PlacedCoder.register(Placed)


def article_document(placed: Placed, indexed_at: datetime) -> dict[str, Any]:
    """The stored document: the article, its fingerprint for story grouping, and its source's
    name and labels flat (``source_name``, ``source_kind``, ``source_country``,
    ``source_owner``; None where the source is unlabelled, so the field is absent to
    filters)."""
    doc = placed.article.model_dump(mode="json")
    doc["topic_names"] = [t.topic for t in placed.article.topics]
    source = placed.article.source
    doc.update(source_name=source.name or source.id,
               source_kind=source.kind.value if source.kind else None,
               source_country=source.country or None, source_owner=source.owner or None)
    doc["text_hash"] = placed.fingerprint.text_hash
    doc["lsh_bands"] = placed.fingerprint.bands
    doc["minhash"] = list(placed.fingerprint.signature)
    if placed.fingerprint.features is not None:
        doc["story_keys"] = placed.fingerprint.story_keys
        doc["story_features"] = placed.fingerprint.features.to_doc()
    doc["indexed_at"] = indexed_at.isoformat()
    return doc


#: What story grouping reads back of stored articles (not their text).
_FINGERPRINT_FIELDS = (
    "doc_id", "story_id", "text_hash", "minhash", "first_seen_at", "story_features")
#: ... and, of the candidates, the keys they were found under.
LOOKUP_FIELDS = (*_FINGERPRINT_FIELDS, "lsh_bands", "story_keys")


#: What the merge step reads of stored candidates: only which stories they are in, so neither
#: the signature nor the story features (most of a document's bytes and decoding).
KEY_FIELDS = ("doc_id", "story_id", "text_hash", "first_seen_at", "lsh_bands", "story_keys")


def fingerprint_of_doc(doc: dict[str, Any], *, features: bool = True) -> dedup.Fingerprint:
    """A stored document (``LOOKUP_FIELDS``, or ``KEY_FIELDS`` without ``features``) as the
    fingerprint story grouping compares."""
    return dedup.Fingerprint(
        doc_id=doc["doc_id"],
        story_id=doc["story_id"],
        text_hash=doc.get("text_hash", ""),
        signature=tuple(doc.get("minhash") or ()),
        first_seen=str(doc.get("first_seen_at", "")),
        features=StoryFeatures.from_doc(doc.get("story_features")) if features else None,
    )


#: Stored documents read per key kind (bands, text hashes, story keys) for a batch.
LOOKUP_SIZE = 500


def near_docs(db: DocumentStore, fps: Sequence[dedup.Fingerprint],
              fields: Sequence[str]) -> list[dict[str, Any]]:
    """The stored documents sharing a band, text hash or story key with one of ``fps``, cut
    down to ``fields``: at most ``LOOKUP_SIZE`` per key kind, the newest first seen. A key
    the run has written for months (a weapon and a country) matches thousands of documents,
    and the ones a new copy can join are the recent ones (the in-run index, too, reads a
    common key's newest entries)."""
    bands = sorted({b for fp in fps for b in fp.bands})
    hashes = sorted({fp.text_hash for fp in fps})
    keys = sorted({k for fp in fps for k in fp.story_keys})
    return [d for field, values in (("lsh_bands", bands), ("text_hash", hashes),
                                    ("story_keys", keys))
            for d in db.find_terms("articles", field, values, LOOKUP_SIZE, fields=fields,
                                   newest_by="first_seen_at")]


def stored_index(docs: Iterable[dict[str, Any]], wanted: set[str], *,
                 features: bool = True) -> dedup.StoryIndex:
    """Stored documents (``LOOKUP_FIELDS``) in a StoryIndex of their own, in the order given,
    none evicted, each filed under those of its bands and story keys that are in ``wanted``:
    the keys the look-up asked for. A stored document has ~130 keys of which a batch shares a
    few, and filing all of them cost ~9% of the pipeline's CPU; ``candidates`` of a
    fingerprint whose keys are all in ``wanted`` is the same either way (a key no one asks for
    is never read, and every document still counts in the key weights). Without
    ``features`` the fingerprints carry none (for callers that only read story ids)."""
    index = dedup.StoryIndex(horizon=None)
    for d in docs:
        index.add(fingerprint_of_doc(d, features=features),
                  keys=[k for k in (*(d.get("lsh_bands") or ()), *(d.get("story_keys") or ()))
                        if k in wanted])
    return index


def fingerprint(matcher: StoryMatcher, article: Article) -> dedup.Fingerprint:
    """What story grouping compares of a classified article (and stores with it)."""
    body = f"{article.title}\n{article.text}"
    return dedup.Fingerprint(
        doc_id=article.doc_id,
        story_id=article.story_id,
        text_hash=text_hash(body),
        signature=dedup.signature(body),
        first_seen=article.first_seen_at.isoformat(),
        features=matcher.features(
            article.text, article.title, article.lang,
            article.published_at or article.first_seen_at,
            # ClassifyTopicsFn's result for this text: not classified twice.
            Classification(topics=article.topics, entities=article.entities)),
    )


class GroupStoriesFn(StoreFn):
    """Batch of Articles -> batch of Placed: each with the story it belongs to.

    Candidates come from the store (earlier runs) and from an in-memory index of this
    worker's earlier batches (copies in the same run, not yet searchable), which holds the
    last ``stories.INDEX_HORIZON`` of article time. Each article is compared only with the
    candidates that share its text hash or a band, and with the few of each index that share
    its rarest story keys (``StoryIndex.candidates``).
    """

    def setup(self) -> None:
        super().setup()
        self.index = dedup.StoryIndex()
        self.matcher = StoryMatcher(Classifier.shared(self.ctx.settings.topics))

    def process(self, batch: Sequence[Article]) -> Iterator[list[Placed]]:
        # Earliest first, so within a batch the story is named after its first copy whatever
        # order the runner delivered the copies in (live and backfill then agree).
        count(metrics.stage_counter("group", "in"), len(batch))
        batch = sorted(batch, key=lambda a: (a.first_seen_at, a.doc_id))
        fps = [fingerprint(self.matcher, article) for article in batch]
        db = self.db()
        known = {doc["doc_id"]: doc for doc in db.find_terms(
            "articles", "doc_id", [fp.doc_id for fp in fps], size=len(fps),
            fields=_FINGERPRINT_FIELDS)}
        bands = sorted({b for fp in fps for b in fp.bands})
        story_keys = sorted({k for fp in fps for k in fp.story_keys})
        # The look-up stays one set of requests per batch, but each article is compared only
        # with the stored documents that share its own text hash, band or story key (what its
        # own look-up would have found, and all the in-run index ever offers): comparing it
        # with every candidate of the whole batch cost most of a batch's CPU.
        found_docs = near_docs(db, fps, LOOKUP_FIELDS)
        # Oldest first, as the in-run index files them: a common key's newest entries are
        # the ones the index reads (StoryIndex.key_postings).
        ordered = sorted(found_docs, key=lambda d: str(d.get("first_seen_at", "")))
        # Filed without their story features, which ranking does not read: only the ones
        # offered to an article as candidates are decoded (once each), not all ~1,500 found.
        stored = stored_index(ordered, {*bands, *story_keys}, features=False)
        stored_features = {d["doc_id"]: d.get("story_features") for d in ordered}
        decoded: dict[int, dedup.Fingerprint] = {}
        out = []
        for article, fp in zip(batch, fps, strict=True):
            previous = known.get(article.doc_id)
            if previous is not None:
                # The same page again (a re-run, an update): it keeps its story.
                decision = dedup.StoryDecision(previous["story_id"])
            else:
                # Once searchable, an article of this run is found by both; scoring it twice
                # cannot change the decision (same story), only cost.
                found: dict[str, dedup.Fingerprint] = {}
                for cand in stored.candidates(fp):
                    full = decoded.get(id(cand))
                    if full is None:
                        full = decoded[id(cand)] = replace(cand, features=StoryFeatures.from_doc(
                            stored_features[cand.doc_id]))
                    found[cand.doc_id] = full
                for cand in self.index.candidates(fp):
                    found.setdefault(cand.doc_id, cand)
                decision = dedup.decide_story(fp, list(found.values()))
            placed_fp = replace(fp, story_id=decision.story_id)
            self.index.add(placed_fp)
            out.append(
                Placed(
                    article.model_copy(update={"story_id": decision.story_id}),
                    placed_fp,
                    decision.duplicate_of,
                )
            )
        count(metrics.stage_counter("group", "out"), len(out))
        yield out


class WriteDocumentsFn(StoreFn):
    """Batch of Placed -> the same batch, once the store acknowledged every document.

    Every article is written, exact copies of another source's text included (their own
    document, in the same story): an alert lists each copy's doc_id and source, and the
    report and dashboards count the same documents and sources the alert does. Documents
    the store rejects go to the dead letters; an unreachable store raises.
    """

    def process(self, batch: Sequence[Placed]) -> Iterator[Any]:
        now = self.ctx.now or datetime.now(UTC)
        docs = {p.article.doc_id: article_document(p, now) for p in batch}
        copies = {p.article.doc_id for p in batch if p.duplicate_of is not None}
        count(metrics.stage_counter("write", "in"), len(batch))
        failures = {f.doc_id: f for f in self.db().bulk_write("articles", list(docs.items()))}
        count(metrics.stage_counter("write", "out"), len(batch) - len(failures))
        count(metrics.DOCUMENTS_WRITTEN, len(docs.keys() - copies - failures.keys()))
        count(metrics.EXACT_COPIES, len(copies - failures.keys()))
        for doc_id, failure in failures.items():
            placed = next(p for p in batch if p.article.doc_id == doc_id)
            yield dead("write", f"HTTP {failure.status}: {failure.error}",
                        placed.article.source.id, placed.article.model_dump_json())
        yield [p for p in batch if p.article.doc_id not in failures]
