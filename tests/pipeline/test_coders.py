"""The coders of the pipeline's typed PCollections (stages.base.EstimatedPickleCoder)."""

from __future__ import annotations

import pickle
from pathlib import Path

import apache_beam as beam
from apache_beam.coders import typecoders

from newsmon.config import KafkaSettings, SearchSettings
from newsmon.pipeline.app import PlacedBatch, build_pipeline
from newsmon.pipeline.detection import Classifier
from newsmon.pipeline.io_kafka import RawRecord
from newsmon.pipeline.normalize import normalize_item
from newsmon.pipeline.stages.items import ArticleCoder
from newsmon.pipeline.stages.store import Placed, PlacedCoder, fingerprint
from newsmon.pipeline.story import StoryMatcher
from tests.pipeline.samples import story_items
from tests.pipeline.test_pipeline_kafka import ROOT, ctx_for


def _placed() -> list[Placed]:
    matcher = StoryMatcher(Classifier.shared(ROOT / "config" / "topics.yaml"))
    articles = [normalize_item(item) for item in story_items()]
    return [Placed(a, fingerprint(matcher, a), None) for a in articles]


def test_articles_and_placed_batches_are_coded_by_their_estimating_coders(
        tmp_path: Path) -> None:
    """Every article and batch PCollection of the graph has one of the estimating coders,
    not Beam's fallback (which pickled each article of a sampled batch for its size)."""
    ctx = ctx_for(tmp_path, KafkaSettings(), SearchSettings())
    p = beam.Pipeline()
    build_pipeline(p | beam.Create([RawRecord("k", b"{}", "o")]), ctx)
    coders: dict[str, str] = {}

    class Coders(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node: beam.pipeline.AppliedPTransform) -> None:
            for tag, pcoll in node.outputs.items():
                if tag is None:
                    coders[node.full_label] = str(typecoders.registry.get_coder(
                        pcoll.element_type))

    p.visit(Coders())
    assert coders["ParseArticles/ClassifyTopics/ParDo(ClassifyTopicsFn)"] == "ArticleCoder"
    assert "ArticleCoder" in coders["StoreArticles/BatchArticles/ParDo(_GlobalWindowsBatchingDoFn)"]
    for stage in ("GroupStories", "WriteDocuments/ParDo(WriteDocumentsFn)", "MergeStories"):
        assert coders[f"StoreArticles/{stage}"] == "ListCoder[PlacedCoder]", stage


def test_the_estimating_coders_round_trip_and_estimate_near_the_pickled_size() -> None:
    batch = _placed()
    coder = typecoders.registry.get_coder(PlacedBatch)
    assert coder.decode(coder.encode(batch)) == batch
    for placed in batch:
        assert PlacedCoder().decode(PlacedCoder().encode(placed)) == placed
        pickled = len(pickle.dumps(placed, pickle.HIGHEST_PROTOCOL))
        assert pickled / 2 < PlacedCoder().estimate_size(placed) < pickled * 2
        article = len(pickle.dumps(placed.article, pickle.HIGHEST_PROTOCOL))
        assert article / 2 < ArticleCoder().estimate_size(placed.article) < article * 2
