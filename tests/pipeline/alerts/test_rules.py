"""Unit tests of the alert logic (alerts/rules.py) and the delivery state (alerts/state.py):
pure functions, no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsmon.models import Alert, Article, Evidence, SourceRef, TopicMatch
from newsmon.pipeline.alerts import rules, state
from newsmon.pipeline.alerts.config import AlertRule, AlertsConfig

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)
EVIDENCE = tuple(Evidence(group="G", term=f"t{i}", start=i, end=i + 1, snippet=f"snippet {i}")
                 for i in range(8))


def article(doc_id: str = "d1", *, score: float = 2.0, lang: str = "en", source: str = "wire",
            country: str = "GB", topic: str = "lrs_topic", story: str = "s1",
            seen: datetime = T0) -> Article:
    return Article(doc_id=doc_id, item_id=doc_id, revision="r", story_id=story,
                   source=SourceRef(id=source, type="rss", country=country), url=f"https://x/{doc_id}",
                   title=f"title {doc_id}", text="text", lang=lang, published_at=seen,
                   first_seen_at=seen,
                   topics=(TopicMatch(topic=topic, score=score, evidence=EVIDENCE),))


RULE = AlertRule(name="lrs", topic="lrs_topic", threshold=1.5, channels=("hook", "mail"))


@pytest.mark.parametrize(("rule", "art", "fires"), [
    (RULE, article(), True),
    (RULE, article(score=1.0), False),                       # below the threshold
    (RULE, article(topic="other"), False),                   # another topic
    (RULE.model_copy(update={"languages": ("de",)}), article(), False),
    (RULE.model_copy(update={"languages": ("de", "en")}), article(), True),
    (RULE.model_copy(update={"sources": ("agency",)}), article(), False),
    (RULE.model_copy(update={"countries": ("GB",)}), article(), True),
    (RULE.model_copy(update={"countries": ("FR",)}), article(), False),
])
def test_matching_rules_applies_every_filter(rule: AlertRule, art: Article, fires: bool) -> None:
    assert bool(rules.matching_rules(art, [rule])) is fires


def test_a_new_alert_keeps_bounded_evidence_and_round_trips_through_its_document() -> None:
    art = article()
    alert = rules.new_alert(RULE, art, art.topics[0], T0)
    assert alert.alert_id == Alert.id_for("lrs", "s1")
    assert len(alert.evidence) == rules.MAX_EVIDENCE < len(EVIDENCE)
    doc = rules.alert_document(alert)
    assert doc["kind"] == "story" and doc["source_count"] == 1
    back, notified = rules.alert_from_document({**doc, "notified": ["hook"]})
    assert back == alert and notified == ["hook"]


def test_merging_a_copy_updates_the_alert_and_merging_it_again_changes_nothing() -> None:
    first = article("d1")
    alert = rules.new_alert(RULE, first, first.topics[0], T0)
    copy = article("d2", score=3.0, lang="de", source="agency", seen=T0 + timedelta(hours=1))
    merged = rules.merge_alert(alert, copy, copy.topics[0], T0 + timedelta(hours=1))
    assert merged is not None
    assert merged.doc_ids == ("d1", "d2")
    assert merged.source_ids == ("agency", "wire") and merged.languages == ("de", "en")
    assert merged.score == 3.0 and merged.created_at == T0
    assert merged.updated_at == T0 + timedelta(hours=1)
    assert rules.merge_alert(merged, copy, copy.topics[0], T0 + timedelta(hours=2)) is None


def test_dry_run_raises_one_alert_per_story_stamped_with_its_first_copy() -> None:
    later = article("d2", seen=T0 + timedelta(minutes=5))
    other_story = article("d3", story="s2", seen=T0 + timedelta(minutes=1))
    alerts = rules.dry_run(RULE, [later, article("d1"), other_story, article("d4", score=0.1)],
                           too_old=AlertsConfig().too_old)
    assert [(a.story_id, a.doc_ids, a.created_at) for a in alerts] == [
        ("s1", ("d1", "d2"), T0), ("s2", ("d3",), T0 + timedelta(minutes=1))]


def test_dry_run_skips_what_the_pipeline_finds_too_old_when_it_sees_it() -> None:
    """The same check as the pipeline's: published longer than max_article_age_s before
    it was first seen (an archive read by a new feed) neither raises nor grows an alert."""
    fresh = article("d1", seen=T0)
    archived = article("d2", story="s2", seen=T0).model_copy(
        update={"published_at": T0 - timedelta(hours=3)})
    late_copy = article("d3", seen=T0 + timedelta(minutes=5)).model_copy(
        update={"published_at": T0 - timedelta(hours=3)})
    hour = AlertsConfig(max_article_age_s=3600)
    alerts = rules.dry_run(RULE, [fresh, archived, late_copy], too_old=hour.too_old)
    assert [(a.story_id, a.doc_ids) for a in alerts] == [("s1", ("d1",))]
    unlimited = AlertsConfig(max_article_age_s=0)
    alerts = rules.dry_run(RULE, [fresh, archived, late_copy], too_old=unlimited.too_old)
    assert {a.story_id: a.doc_ids for a in alerts} == {"s1": ("d1", "d3"), "s2": ("d2",)}


# --- delivery state --------------------------------------------------------------------------


def attempt(channel: str, status: state.DeliveryStatus) -> state.Attempt:
    return state.Attempt(channel, status, T0, attempts=1, error="" if status == "sent" else "x")


def test_outcomes_move_channels_between_the_sets() -> None:
    doc = state.initial_state(["hook", "mail", "tg", "old"]) | {"lease_until": "soon"}
    after = state.apply_attempts(doc, [attempt("hook", "sent"), attempt("mail", "failed"),
                                       attempt("tg", "throttled"), attempt("old", "expired")])
    assert after["notified"] == ["hook"] and after["throttled"] == ["tg"]
    assert after["pending"] == ["mail"]                  # a failure is tried again
    assert after["failed"] == ["mail", "old"]            # expired: given up
    assert "lease_until" not in after and len(after["deliveries"]) == 4
    # Recording the same outcomes again changes nothing but the log.
    again = state.apply_attempts(after, [attempt("hook", "sent")])
    assert {k: again[k] for k in ("notified", "pending", "failed", "throttled")} == {
        k: after[k] for k in ("notified", "pending", "failed", "throttled")}


def test_a_later_success_clears_the_failure() -> None:
    doc = state.apply_attempts(state.initial_state(["hook"]), [attempt("hook", "failed")])
    doc = state.apply_attempts(doc, [attempt("hook", "sent")])
    assert (doc["notified"], doc["pending"], doc["failed"]) == (["hook"], [], [])


def test_owed_includes_a_channel_the_rule_gained_but_not_one_given_up() -> None:
    doc = state.apply_attempts(state.initial_state(["hook", "old"]),
                               [attempt("hook", "sent"), attempt("old", "expired")])
    assert state.owed(["hook", "old", "new"], doc) == ["new"]


def test_the_delivery_log_is_bounded() -> None:
    doc = state.initial_state(["hook"])
    for _ in range(state.MAX_DELIVERY_RECORDS + 7):
        doc = state.apply_attempts(doc, [attempt("hook", "failed")])
    assert len(doc["deliveries"]) == state.MAX_DELIVERY_RECORDS
