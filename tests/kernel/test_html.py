"""The one html_to_text (newsmon/html.py), merged from the connectors' copy and the
pipeline's: these pin where the two disagreed. The connectors publish its output and the
pipeline normalizes that output with it again, so it must also leave its own output alone."""

from __future__ import annotations

import pytest

from newsmon.html import html_to_text, strip_trailing_boilerplate


def test_inline_markup_stays_on_its_line() -> None:
    # The pipeline's copy put a line break between every text node ("Hello\nworld").
    assert html_to_text("<p>Hello <b>world</b>, <a href='/x'>again</a>.</p><p>Next</p>") == (
        "Hello world, again.\nNext")


@pytest.mark.parametrize("element", ["nav", "footer", "aside", "form", "iframe", "svg",
                                     "script", "style", "noscript", "template"])
def test_elements_that_are_not_text_are_dropped(element: str) -> None:
    # The connectors' copy kept navigation, footers, asides, forms, iframes and SVG text.
    markup = f"<p>Article.</p><{element}>menu entries</{element}><p>More.</p>"
    assert html_to_text(markup) == "Article.\nMore."


@pytest.mark.parametrize("line", ["Read more: the full interview", "Foto: Agentur",
                                  "Abonnieren Sie unseren Kanal", "Читайте также: другое"])
def test_boilerplate_lines_are_dropped_wherever_they_stand(line: str) -> None:
    # The connectors' copy kept them (the pipeline dropped them only later, in normalize).
    assert html_to_text(f"<p>First.</p><p>{line}</p><p>Last.</p>") == "First.\nLast."
    assert html_to_text(f"First.\n{line}\nLast.") == "First.\nLast."


def test_a_line_that_only_mentions_a_newsletter_is_article_text() -> None:
    text = "The minister said the newsletter leaked.\nTroops moved east."
    assert html_to_text(text) == text
    assert strip_trailing_boilerplate(text) == text


def test_its_own_output_comes_back_unchanged() -> None:
    markup = ("<div><p>First &amp; foremost.</p><p>Second<br>line</p>\n\n\n<p>Bild: dpa</p>"
              "<footer>menu</footer><p>Subscribe to our newsletter</p></div>")
    once = html_to_text(markup)
    assert once == "First & foremost.\nSecond\nline"
    assert html_to_text(once) == once
