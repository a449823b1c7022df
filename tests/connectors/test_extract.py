"""Pure text helpers: HTML to text, canonical URLs, boilerplate removal, main-text extraction."""

from __future__ import annotations

from pathlib import Path

from newsmon.connectors.extract import extract_article
from newsmon.html import html_to_text, strip_trailing_boilerplate
from newsmon.urls import canonical_url
from tests.connectors.feeds import fixture

SEED = "seeds/000_c1df5ca3d68847fe.txt"  # in the shared directory (tests/conftest.py)


def test_html_becomes_text_with_line_breaks_and_no_scripts() -> None:
    html = "<p>Hello&nbsp;<b>world</b></p><p>Two<br>lines</p><script>alert(1)</script>"
    assert html_to_text(html) == "Hello world\nTwo\nlines"


def test_plain_text_passes_through_cleaned() -> None:
    assert html_to_text("  A  title \n\n\n\n next ") == "A title\n\nnext"


def test_canonical_url_drops_tracking_fragment_and_default_port() -> None:
    assert (
        canonical_url("HTTPS://News.Example:443/a/b?utm_source=x&id=3&fbclid=z#comments")
        == "https://news.example/a/b?id=3"
    )
    assert canonical_url("http://news.example:8080") == "http://news.example:8080/"
    assert canonical_url("mailto:desk@news.example") == "mailto:desk@news.example"


def test_trailing_newsletter_and_donation_calls_are_dropped(shared_dir: Path) -> None:
    text = (shared_dir / SEED).read_text(encoding="utf-8").strip()
    cleaned = strip_trailing_boilerplate(text)
    assert cleaned.endswith("ukrainische Militäranlage in Dnipropetrowsk.")
    assert "Newsletter" not in cleaned and "Spende" not in cleaned and "Bild: KI" not in cleaned
    # everything before the footer is kept, word for word
    assert text.startswith(cleaned)


def test_boilerplate_is_only_removed_from_the_end() -> None:
    text = "Subscribe to our newsletter, the minister said, was his advice.\nTroops moved east."
    assert strip_trailing_boilerplate(text) == text


def test_boilerplate_calls_in_other_languages() -> None:
    for footer in (
        "Подпишитесь на наш канал, чтобы не пропустить новости.",
        "Підтримайте нашу редакцію донатом.",
        "Abonnez-vous à notre lettre d'information.",
        "Wesprzyj nas darowizną.",
        "Iscriviti alla nostra newsletter.",
        "Suscríbete a nuestro boletín.",
        "The post Storm Shadow strikes appeared first on Defence News.",
    ):
        assert strip_trailing_boilerplate(f"Article text.\n{footer}") == "Article text."


def test_main_text_of_the_seed_article_page_has_no_navigation_or_footer() -> None:
    text = extract_article(fixture("article-seed.html"), "https://news.example/truppen")
    assert text is not None
    first_paragraph = "Das Vereinigte Königreich und Frankreich haben die Gespräche"
    assert first_paragraph in text.split("\n")[1]  # after the headline
    assert text.endswith("ukrainische Militäranlage in Dnipropetrowsk.")
    for boilerplate in ("Newsletter", "Spende", "Bild: KI", "Impressum", "Panzerhaubitzen",
                        "Startseite"):
        assert boilerplate not in text


def test_extraction_is_repeatable() -> None:
    # trafilatura's own "deduplicate" cache would empty a second extraction of one page
    first = extract_article(fixture("article-seed.html"), "https://news.example/truppen")
    assert extract_article(fixture("article-seed.html"), "https://news.example/truppen") == first


def test_a_page_without_an_article_yields_none() -> None:
    page = "<html><body><nav><a href='/'>Home</a></nav><p>Short teaser.</p></body></html>"
    assert extract_article(page, "https://x.example/") is None
