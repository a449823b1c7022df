"""What an alert says (content.py): sources with labels, times, lead, entities, attribute,
matched words, and two or three distinct evidence sentences cut at word boundaries."""

from __future__ import annotations

import io
import re

from newsmon.pipeline.alerts.channels.console import ConsoleChannel, ConsoleNotifier
from newsmon.pipeline.alerts.channels.telegram import telegram_html
from newsmon.pipeline.alerts.content import (
    MAX_SENTENCE_CHARS,
    cut_words,
    evidence_sentences,
    lead_of,
    plain_text,
    story_content,
    topic_display_name,
)
from newsmon.pipeline.alerts.delivery import message_for
from tests.pipeline.alerts import samples


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text))


def test_evidence_is_distinct_sentences_never_the_title_with_the_terms_marked() -> None:
    doc, articles = samples.story()
    content = story_content(doc, articles)
    texts = [s.text for s in content.evidence]
    assert 2 <= len(texts) <= 3 and len(set(texts)) == len(texts)
    assert samples.TITLE not in texts
    # the body repeats its first sentence: shown once
    assert sum("London has given Kyiv" in t for t in texts) == 1
    for sentence in content.evidence:
        marked = [sentence.text[s:e] for s, e in sentence.marks]
        assert marked and all(m.casefold() in {t.casefold() for t in content.matched_terms}
                              for m in marked)
        # every word shown is a whole word of the article
        assert words(sentence.text) <= words(samples.BODY)


def test_a_long_sentence_is_cut_at_word_boundaries_around_its_term() -> None:
    body = "Officials " + "said that " * 60 + "the ATACMS strike " + "was planned " * 60 + "."
    spans = [(m.start(), m.end()) for m in re.finditer("ATACMS", body)]
    [sentence] = evidence_sentences("", body, spans)
    assert len(sentence.text) <= MAX_SENTENCE_CHARS + 4
    assert sentence.text.startswith("… ") and sentence.text.endswith(" …")
    inner = sentence.text.removeprefix("… ").removesuffix(" …").split()
    assert set(inner) <= set(body.split())  # no word cut in half
    assert [sentence.text[s:e] for s, e in sentence.marks] == ["ATACMS"]


def test_the_matchers_cut_snippets_are_cleaned_when_articles_are_gone() -> None:
    doc, _ = samples.story()
    evidence = [{**doc["evidence"][0], "snippet": "…ials said the missil…"},
                {**doc["evidence"][0], "snippet": "…ials said the missil…"},
                {**doc["evidence"][0], "snippet": samples.TITLE}]
    content = story_content({**doc, "evidence": evidence}, [])
    assert [s.text for s in content.evidence] == ["said the"]
    assert content.sources[0].name == "bbc" and content.lead == ""


def test_sources_carry_their_labels_when_they_have_them() -> None:
    doc, articles = samples.grown_story()
    content = story_content(doc, articles)
    labelled, bare = content.sources
    assert (labelled.name, labelled.kind, labelled.country, labelled.owner) == (
        "BBC News", "public broadcaster", "GB", "BBC")
    assert (bare.name, bare.kind, bare.owner) == ("Deutsche Welle", None, None)
    assert bare.country == "GB"  # from the source as configured
    assert content.languages == ("de", "en")
    assert content.published_at is not None and content.first_seen_at == samples.T0
    assert content.attribute == "requested"


def test_lead_skips_a_repeated_title_and_stops_at_a_word() -> None:
    lead = lead_of(samples.TITLE, samples.BODY)
    assert not lead.startswith(samples.TITLE) and lead.startswith("London has given")
    assert lead.endswith(" …") and set(lead[:-2].split()) <= set(samples.BODY.split())
    assert cut_words("abc defgh ijklmnop", 12) == "abc defgh …"


def test_topic_names_read_as_words() -> None:
    assert topic_display_name("long_range_strike") == "Long range strike"
    assert topic_display_name("lrs", {"lrs": "Long-range strikes"}) == "Long-range strikes"


def test_console_and_telegram_show_the_same_facts() -> None:
    doc, articles = samples.grown_story()
    content = story_content(doc, articles)
    out = io.StringIO()
    ConsoleNotifier(ConsoleChannel(), out).send(message_for(content, "alert.created"))
    text = out.getvalue()
    assert text == plain_text(content) + "\n"
    html = telegram_html(content)
    for fact in ("BBC News (public broadcaster, GB)", "Deutsche Welle (GB)", "requested",
                 "Volodymyr Zelensky", "2026-11-20 09:10 UTC"):
        assert fact in text and fact in html
    assert samples.TOPIC not in text and samples.TOPIC not in html
    # a message too long for Telegram loses evidence, never a closing tag
    short = telegram_html(content, limit=700)
    assert len(short) <= 700 and short.count("<b>") == short.count("</b>")
