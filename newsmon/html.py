"""HTML to text, once for both halves: the connectors clean what they publish with it, the
pipeline normalizes with it (and gets the connectors' output back unchanged).

* :func:`html_to_text`: the visible text of a fragment or a page, one block per line, without
  scripts, styles, forms, navigation and footers, and without lines that are never article
  text wherever they stand (image credits, "read more", calls to subscribe or follow);
* :func:`clean_text`: spaces collapsed, lines stripped, at most one blank line in a row;
* :func:`strip_trailing_boilerplate`: calls to subscribe, donate or follow and image credits at
  the *end* of a text (where sites put them), so an article that discusses a newsletter keeps
  its words.

Markup nested too deeply for an HTML tree builder never reaches one; a linear way to its
text is used instead. An HTML5 tree builder checks the stack of open elements for most start
tags ("is there a ``p`` in button scope?"), so its time grows with the square of the nesting
depth. lexbor (selectolax) needs 3 s for 40,000 nested ``<div>``s (240 KB) and over a minute
for 100,000 (1.1 MB); ``<ul><li>``, ``<p><div>``, ``<div></span>`` and misnested
``<b><div></b>`` grow its stack the same way. A 10 MB page, within the fetch limit, would
hold a worker for hours.

:func:`too_deep` estimates the depth of the stack in one linear pass and errs on the high
side (it closes only what HTML certainly closes); markup over :data:`MAX_DEPTH` is not given
to a tree builder: :func:`flat_text` takes its text in one linear pass instead. Real pages
nest a few dozen levels; only hostile or badly broken markup gets the flat treatment.
Pure functions, no I/O.
"""

from __future__ import annotations

import html
import re

from selectolax.lexbor import LexborHTMLParser

_BLOCK_END = re.compile(
    r"(?i)(<br\s*/?>|</(?:p|div|li|h[1-6]|blockquote|tr|pre|section|article|figcaption)\s*>)"
)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
_BLANK_LINES = re.compile(r"\n{3,}")
#: Elements whose content is never article text.
_NOT_TEXT = ["script", "style", "noscript", "template", "iframe", "svg", "form", "nav", "footer",
             "aside"]
#: Lines that are never article text, wherever they stand: image credits, "read more" links,
#: calls to subscribe or follow, in the languages of the starter feeds.
_BOILERPLATE_LINE = re.compile(
    r"^(?:bild:|foto:|photo:|image:|read more|mehr zum thema|abonnieren sie|subscribe to|"
    r"werden sie teil unserer community|gerne können sie auch|follow us on|подписывайтесь|"
    r"підписуйтесь|читайте также|читайте також)",
    re.IGNORECASE,
)


def clean_text(text: str) -> str:
    """Collapse runs of spaces, strip each line, keep at most one blank line in a row."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def html_to_text(markup: str) -> str:
    """Visible text of an HTML fragment or page: block ends and ``<br>`` become line breaks,
    entities are decoded, elements that are not text (:data:`_NOT_TEXT`) and boilerplate
    lines are dropped. Plain text passes through, cleaned the same way."""
    if not markup:
        return ""
    if "<" not in markup and "&" not in markup:
        text = markup
    elif too_deep(markup):  # a tree builder would take quadratic time (see too_deep)
        text = flat_text(markup)
    else:
        tree = LexborHTMLParser("<body>" + _BLOCK_END.sub(r"\1\n", markup) + "</body>")
        tree.strip_tags(_NOT_TEXT)
        body = tree.body
        text = body.text(deep=True) if body is not None else ""
    kept = (line for line in clean_text(text).split("\n") if not _BOILERPLATE_LINE.match(line))
    return _BLANK_LINES.sub("\n\n", "\n".join(kept)).strip()


# --- boilerplate at the end of articles ----------------------------------------------------

# Calls to subscribe, donate or follow. They are only ever removed from the *end* of a text
# (see strip_trailing_boilerplate), where sites put them, so an article that discusses a
# newsletter keeps its words.
_BOILERPLATE = re.compile(
    r"(?i)("
    r"newsletter|subscribe|sign up|donat|support us|support our|become a (member|patron)|"
    r"follow us|appeared first on|"
    r"spende|unterstützen sie uns|premium-mitglied|abonnieren sie|folgen sie uns|"
    r"werden sie teil|erschien zuerst|"
    r"abonnez-vous|faire un don|soutenez|lettre d'information|suivez-nous|"
    r"est apparu en premier|"
    r"подпиш|подписыва|поддержите|пожертвова|рассылк|"
    r"підпиш|підтримайте|донат|розсилк|"
    r"zapisz się|wesprzyj|darowizn|subskryb|obserwuj nas|"
    r"iscriviti|abbonati|sostienici|donazion|seguici|"
    r"suscríbete|suscribete|donación|apóyanos|síguenos|boletín"
    r")"
)
_CREDIT = re.compile(
    r"(?i)^(bild|foto|photo|image|picture|fotografía|zdjęcie|фото|źródło|quelle|crédit|credit)"
    r"\s*[:©]"
)
#: A paragraph longer than this is article text even if it mentions a newsletter.
_MAX_BOILERPLATE_CHARS = 600


def strip_trailing_boilerplate(text: str) -> str:
    """Drop the trailing paragraphs that are calls to subscribe/donate/follow or image
    credits, stopping at the first one that is not (only the end of a text is touched)."""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    end = len(paragraphs)
    while end > 0:
        para = paragraphs[end - 1].strip()
        is_call = len(para) <= _MAX_BOILERPLATE_CHARS and _BOILERPLATE.search(para)
        is_credit = len(para) <= 80 and _CREDIT.match(para)
        if not (is_call or is_credit):
            break
        end -= 1
    if end == len(paragraphs):
        return text
    return "\n".join(paragraphs[:end])


# --- markup too deep for a tree builder -----------------------------------------------------



#: Deeper than any real page; lexbor parses 2 M tags at this depth in a few seconds.
MAX_DEPTH = 512

# As HTML's tokenizer: a tag name runs to white space, "/" or ">" and may contain "<"
# (``<x</div>`` is one start tag named ``x<``), and attributes run to the next ">".
_TAG = re.compile(r"<(/?)([A-Za-z][^\s/>]*)[^>]*?(/?)>")
#: "/>" closes a tag only after its name, a space or a quote: in ``<svg class=x/>`` the slash
#: belongs to the unquoted value.
_SELF_CLOSING = re.compile(r"(?:^</?[A-Za-z][^\s/>]*|[\s\"'])/>$")
_VOID = frozenset({
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input",
    "keygen", "link", "meta", "param", "source", "track", "wbr",
    "image",  # the tree builder reads <image> as <img>
})
_REOPENING_VOID = frozenset({"area", "br", "embed", "img", "image", "input", "keygen", "wbr"})
#: Formatting elements. Their end tags run the adoption agency algorithm (in the model: they
#: close only when innermost), and when something else closes them the tree builder reopens
#: them at the next text ("reconstructs the active formatting elements"), up to three alike.
_FORMATTING = frozenset({
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong",
    "tt", "u",
})
#: Start tags that close an open ``p`` first.
_CLOSES_P = frozenset({
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div",
    "dl", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hgroup", "hr", "li", "dd", "dt", "listing", "main", "menu", "nav", "ol",
    "p", "pre", "search", "section", "summary", "table", "ul",
})
#: HTML's "special" elements: an end tag of an ordinary element is ignored when one of these
#: is open above it, and a list item's start tag looks for an earlier item only up to one.
_SPECIAL_HTML = frozenset({
    "address", "applet", "area", "article", "aside", "base", "basefont", "bgsound",
    "blockquote", "body", "br", "button", "caption", "center", "col", "colgroup", "dd",
    "details", "dir", "div", "dl", "dt", "embed", "fieldset", "figcaption", "figure",
    "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head",
    "header", "hgroup", "hr", "html", "iframe", "img", "input", "keygen", "li", "link",
    "listing", "main", "marquee", "menu", "meta", "nav", "noembed", "noframes", "noscript",
    "object", "ol", "p", "param", "plaintext", "pre", "script", "search", "section", "select",
    "source", "style", "summary", "table", "tbody", "td", "template", "textarea", "tfoot",
    "th", "thead", "title", "tr", "track", "ul", "wbr", "xmp",
})
#: Special in SVG and MathML only: they stop searches, but an HTML element of the same name
#: is ordinary.
_SPECIAL = _SPECIAL_HTML | {
    "svg", "math", "foreignobject", "desc", "mi", "mo", "mn", "ms", "mtext", "annotation-xml",
}
#: Where a search for an element "in scope" stops (a special element's end tag, a ``p``).
_SCOPE = frozenset({
    "frameset",  # in a frameset document nothing but its end tag closes it
    "applet", "caption", "html", "table", "td", "th", "marquee", "object", "template", "svg",
    "math", "foreignobject", "desc", "title", "mi", "mo", "mn", "ms", "mtext",
    "annotation-xml",
})
_BUTTON_SCOPE = _SCOPE | {"button"}
_TABLE_SCOPE = frozenset({"html", "table", "template", "frameset"})
#: List items close an earlier item of these kinds, looking past ``address``, ``div``, ``p``
#: and ordinary elements only.
_ITEMS = {"li": frozenset({"li"}), "dt": frozenset({"dt", "dd"}), "dd": frozenset({"dt", "dd"})}
#: Rows and cells close the earlier row or cell, but only inside a table.
_CELLS = {"tr": frozenset({"tr"}), "td": frozenset({"td", "th"}), "th": frozenset({"td", "th"})}
#: How far down the stack a search looks; beyond it, the estimate stays high (safe side).
_LOOK_DOWN = 16
#: Self-closing syntax (``<path/>``) means something only in SVG and MathML (and for ``<svg/>``
#: and ``<math/>`` themselves), except for the HTML elements that break out of them; below
#: an integration point content is HTML again.
_FOREIGN = frozenset({"svg", "math"})
_INTEGRATION = {"svg": frozenset({"foreignobject", "desc", "title"}),
                "math": frozenset({"mi", "mo", "mn", "ms", "mtext", "annotation-xml"})}

_BREAKOUT = frozenset({
    "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em",
    "embed", "font", "h1", "h2", "h3", "h4", "h5", "h6", "head", "hr", "i", "img", "li",
    "listing", "menu", "meta", "nobr", "ol", "p", "pre", "ruby", "s", "small", "span",
    "strong", "strike", "sub", "sup", "table", "tt", "u", "ul", "var",
})
#: Start tags the tree builder ignores in a body: always, or outside a table.
_NEVER_OPENED = frozenset({"html", "head", "body", "frame"})
_TABLE_PARTS = frozenset({"caption", "colgroup", "tbody", "thead", "tfoot", "tr", "td", "th"})
#: HTML's "Noah's ark": at most this many identical formatting elements are reopened.
_ARK = 3
#: Their content is text up to their end tag (in HTML, not in SVG or MathML); after
#: ``plaintext`` everything is.
_RAW_TEXT = frozenset({"textarea", "title", "xmp", "iframe", "noembed", "noframes", "script",
                       "style"})
#: Text or markup, depending on whether the parser runs scripts: both readings are kept safe
#: by counting the start tags inside and closing nothing.
_MAYBE_RAW = "noscript"
#: Inside a select, the tree builder ignores most tags: the model closes nothing there but
#: these (and a noscript its end tag).
_CAUTIOUS_CLOSES = frozenset({"select", "option", "optgroup", _MAYBE_RAW})
#: Comments and the elements whose content is not text.
_DROP = re.compile(r"<!--|<(script|style|noscript|template)(?![A-Za-z0-9:_-])", re.IGNORECASE)
_BLOCK_NAMES = sorted(
    {*_CLOSES_P, "br", "tr", "td", "th", "caption", "title", "body"},
    key=lambda name: -len(name),  # longest first: "h1" before "hr" does not matter, "dl" does
)
_BLOCK_TAG = re.compile(
    r"</?(?:" + "|".join(_BLOCK_NAMES) + r")(?![A-Za-z0-9:_-])[^<>]*>",
    re.IGNORECASE,
)


def too_deep(markup: str, limit: int = MAX_DEPTH) -> bool:
    """True when a tree builder's stack of open elements could grow deeper than ``limit``.

    A model of the HTML tree builder's stack that pops only where HTML certainly pops
    (matching end tags, list items, rows and cells, ``p`` before blocks), looking at most
    ``_LOOK_DOWN`` entries down; that adds the rows and table bodies HTML implies; that honours
    ``/>`` only in SVG and MathML; and that reopens formatting elements closed by something
    else at the next text, as HTML does (``<p><b>x</p>`` and a line break, repeated, nests
    deeper and deeper). Wherever it is unsure it keeps elements open, so that its depth stays
    at or above the real one (tests/hostile/test_fuzz.py checks this against lexbor). Linear:
    each search is bounded and what it passes is popped.
    """
    if markup.count("<") <= limit:
        return False  # fewer tags than the limit: cannot nest deeper
    stack: list[str] = []
    keys: list[str] = []  # parallel to stack: a formatting element's key, else ""
    foreign: list[str] = []  # parallel to stack: "svg" or "math" for their elements, else ""
    open_count: dict[str, int] = {}
    #: Formatting elements closed by something else, to reopen: their whole tag (the key) ->
    #: (name, how many; at most _ARK alike).
    reopen: dict[str, tuple[str, int]] = {}

    def push(name: str, key: str = "", namespace: str = "") -> None:
        stack.append(name)
        keys.append(key)
        foreign.append(namespace)
        open_count[name] = open_count.get(name, 0) + 1

    def pop_to(index: int) -> None:
        while len(stack) > index:
            name, key = stack.pop(), keys.pop()
            foreign.pop()
            open_count[name] -= 1
            if key:
                reopen[key] = (name, min(_ARK, reopen.get(key, (name, 0))[1] + 1))

    def reconstruct() -> None:
        for key, (name, count) in reopen.items():
            for _ in range(count):
                push(name, key)
        reopen.clear()

    def find(names: frozenset[str], stop: frozenset[str], skip: frozenset[str] = frozenset()
             ) -> int:
        """Index of the innermost open element in ``names``, searching down past anything
        but ``stop`` (except ``skip``), at most _LOOK_DOWN deep; -1 if none."""
        for index in range(len(stack) - 1, max(-1, len(stack) - 1 - _LOOK_DOWN), -1):
            if stack[index] in names:
                return index
            if stack[index] in stop and stack[index] not in skip:
                return -1
        return -1

    text_from = 0
    raw_until = ""  # inside a raw-text element: the end tag that ends it
    for match in _TAG.finditer(markup):
        closing, name = match.group(1), match.group(2).lower()
        self_closing = bool(match.group(3)) and _SELF_CLOSING.search(match.group(0)) is not None
        if raw_until:
            if closing and name == raw_until:
                raw_until = ""
                pop_to(len(stack) - 1)
                text_from = match.end()
            continue
        if reopen and match.start() > text_from:
            reconstruct()  # text (even white space) reopens closed formatting elements
        text_from = match.end()
        # Would a new element go into SVG or MathML? (Below an integration point it is HTML.)
        namespace = foreign[-1] if foreign else ""
        if namespace and stack[-1] in _INTEGRATION[namespace]:
            namespace = ""
        in_svg = bool(namespace)
        if not in_svg and not closing and name in _VOID:
            # Empty elements still act: <hr> closes a p, <br> or <img> reopen formatting.
            if name == "hr" and open_count.get("p") and not open_count.get("select"):
                index = find(frozenset({"p"}), _BUTTON_SCOPE)
                if index >= 0:
                    pop_to(index)
            elif reopen and name in _REOPENING_VOID:
                reconstruct()
            continue
        if not in_svg and (name in _VOID or name in _NEVER_OPENED or (
                name in _TABLE_PARTS and not open_count.get("table"))):
            continue
        cautious = bool(open_count.get(_MAYBE_RAW) or open_count.get("select"))
        if closing:
            if not open_count.get(name) or (cautious and name not in _CAUTIOUS_CLOSES):
                continue  # nothing to close (the tree builder ignores it), or unsure
            if name in _FORMATTING:
                if stack[-1] == name:  # else the adoption agency: unsure, keep it open
                    stack.pop()
                    keys.pop()
                    foreign.pop()
                    open_count[name] -= 1
                continue
            index = find(frozenset({name}), _SCOPE if name in _SPECIAL_HTML else _SPECIAL)
            if index >= 0 and name == "form":
                # </form> takes the form element off the stack and leaves what is above it
                del stack[index], keys[index], foreign[index]
                open_count[name] -= 1
            elif index >= 0:
                pop_to(index)
            continue
        if name in _FOREIGN or (in_svg and name not in _BREAKOUT):
            if not self_closing:
                push(name, namespace=name if name in _FOREIGN else namespace)
        elif not in_svg and name in _RAW_TEXT and not open_count.get("frameset"):
            push(name)
            raw_until = name
        elif not in_svg and name == "plaintext":
            return len(stack) + 1 > limit  # the rest of the document is its text
        else:
            # An HTML element; "/>" means nothing here. A breakout from SVG (``<svg><p>``)
            # closes the SVG elements: the model keeps them.
            if cautious:
                pass  # no implied end tags where the model is unsure
            elif name in _ITEMS:
                index = find(_ITEMS[name], _SPECIAL, skip=frozenset({"address", "div", "p"}))
                if index >= 0:
                    pop_to(index)
            elif name in _CELLS:
                index = find(_CELLS[name], _TABLE_SCOPE)
                if index >= 0:
                    pop_to(index)
                top = stack[-1] if stack else ""
                if top == "table":
                    push("tbody")  # implied by the tree builder
                    top = "tbody"
                if name != "tr" and top in ("tbody", "thead", "tfoot"):
                    push("tr")
            elif name == "option" and stack and stack[-1] == "option":
                pop_to(len(stack) - 1)
            if name in _CLOSES_P and open_count.get("p") and not cautious:
                index = find(frozenset({"p"}), _BUTTON_SCOPE)
                if index >= 0:
                    pop_to(index)
            if reopen and name not in _CLOSES_P and name not in _ITEMS:
                reconstruct()  # so do ordinary and formatting start tags
            push(name, " ".join(match.group(0).lower().split()) if name in _FORMATTING else "")
        if len(stack) > limit:
            return True
    return False


def flat_text(markup: str) -> str:
    """The text of ``markup`` without a tree: tags removed (block tags become line breaks),
    scripts, styles and comments dropped, entities decoded. Linear in the length."""
    lower = markup.lower()
    kept: list[str] = []
    pos, end = 0, len(markup)
    while (drop := _DROP.search(markup, pos)) is not None:
        kept.append(markup[pos:drop.start()])
        name = drop.group(1)
        if name is None:  # a comment
            close = markup.find("-->", drop.end())
            pos = end if close < 0 else close + 3
        else:
            close = lower.find(f"</{name.lower()}", drop.end())
            gt = -1 if close < 0 else markup.find(">", close)
            pos = end if gt < 0 else gt + 1
    kept.append(markup[pos:])
    text = _BLOCK_TAG.sub("\n", "".join(kept))
    return html.unescape(_TAG.sub("", text))
