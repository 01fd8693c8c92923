"""Markdown to email-safe HTML, ``[%KEY%]`` substitution, and the plain-text alternative.

:func:`render_html` gives the HTML that is sent (placeholders left in place, for Netcore to
fill per envelope). :func:`preview_html` is that same HTML with one envelope's values filled
in, which is what the preview shows. Both therefore come from one function.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections.abc import Mapping
from functools import lru_cache
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Final

import css_inline
import markdown

from netcore_desktop.core.contract import PLACEHOLDER_RE

if TYPE_CHECKING:
    from netcore_desktop.core.message import Draft

logger = logging.getLogger(__name__)

#: A small stylesheet that reads well in every common mail client. It is inlined into
#: ``style`` attributes because many clients drop ``<style>`` blocks.
EMAIL_CSS: Final = """
body { margin: 0; padding: 0; background: #ffffff; }
.nd-body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;
  font-size: 16px; line-height: 1.5; color: #1f2328; max-width: 640px; margin: 0 auto;
  padding: 16px; }
h1 { font-size: 26px; margin: 0 0 16px; line-height: 1.25; }
h2 { font-size: 21px; margin: 24px 0 12px; line-height: 1.25; }
h3 { font-size: 18px; margin: 20px 0 8px; }
p { margin: 0 0 16px; }
a { color: #0969da; text-decoration: underline; }
img { max-width: 100%; height: auto; border: 0; }
ul, ol { margin: 0 0 16px; padding-left: 24px; }
li { margin: 0 0 4px; }
blockquote { margin: 0 0 16px; padding: 0 12px; border-left: 4px solid #d0d7de; color: #59636e; }
code { font-family: Menlo, Consolas, monospace; font-size: 14px; background: #f6f8fa;
  padding: 1px 4px; border-radius: 4px; }
pre { font-family: Menlo, Consolas, monospace; font-size: 14px; background: #f6f8fa;
  padding: 12px; border-radius: 6px; overflow: auto; margin: 0 0 16px; }
table { border-collapse: collapse; margin: 0 0 16px; }
th, td { border: 1px solid #d0d7de; padding: 6px 12px; text-align: left; }
th { background: #f6f8fa; font-weight: 600; }
hr { border: 0; border-top: 1px solid #d0d7de; margin: 24px 0; }
"""

_MD_EXTENSIONS: Final = ["tables", "fenced_code", "sane_lists", "attr_list"]

# Building a Markdown instance (its extensions and pattern tables) costs about as much as
# converting a short message, so each thread keeps one and resets it between documents.
_md_local = threading.local()

#: Rendered documents kept by :func:`render_html`: the window renders a draft for the preview
#: and then sends it, and the same draft is often sent again and again.
_RENDER_CACHE_SIZE: Final = 16
#: Sources longer than this are rendered every time, so the cache stays a few megabytes.
_RENDER_CACHE_MAX_SOURCE: Final = 256 * 1024

_INLINER: Final = css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)

# Placeholders are swapped for inert words before Markdown runs, so that underscores in
# keys such as FIRST_NAME are never read as emphasis and brackets never as links. The word's
# prefix is lengthened until it does not occur in the source, so text that happens to look
# like a guard word is never mistaken for one.
_GUARD_PREFIX: Final = "ndph"


def find_placeholders(*texts: str) -> list[str]:
    """Placeholder keys used in ``texts``, in order of first use, without repeats."""
    seen: dict[str, None] = {}
    for text in texts:
        for match in PLACEHOLDER_RE.finditer(text):
            seen.setdefault(match.group(1), None)
    return list(seen)


def substitute(text: str, attributes: Mapping[str, str], *, escape: bool = False) -> str:
    """Fill ``[%KEY%]`` placeholders from ``attributes``; unknown keys stay as they are.

    With ``escape`` the values are HTML-escaped (for the preview of an HTML body). Netcore
    itself fills values in verbatim, so the payload never uses ``escape``.
    """

    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in attributes:
            return match.group(0)
        value = attributes[key]
        return html.escape(value, quote=False) if escape else value

    return PLACEHOLDER_RE.sub(fill, text)


def missing_placeholders(attributes: Mapping[str, str], *texts: str) -> list[str]:
    """Keys used in ``texts`` with no value (or an empty value) in ``attributes``."""
    return [k for k in find_placeholders(*texts) if not attributes.get(k, "").strip()]


def markdown_to_html(source: str) -> str:
    """Markdown to a complete, email-safe HTML document with the stylesheet inlined."""
    keys: list[str] = []
    prefix = _GUARD_PREFIX
    while prefix in source:
        prefix += "q"

    def guard(match: re.Match[str]) -> str:
        keys.append(match.group(0))
        return f"{prefix}{len(keys) - 1}x"

    guarded = PLACEHOLDER_RE.sub(guard, source)
    fragment = _convert(guarded)
    if keys:
        fragment = re.sub(
            re.escape(prefix) + r"(\d+)x",
            lambda m: keys[int(m.group(1))] if int(m.group(1)) < len(keys) else m.group(0),
            fragment,
        )
    document = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{EMAIL_CSS}</style></head>"
        f'<body><div class="nd-body">{fragment}</div></body></html>'
    )
    try:
        return str(_INLINER.inline(document))
    except UnicodeEncodeError:
        # A lone surrogate cannot cross into the inliner; show U+FFFD there, as browsers do.
        clean = document.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return str(_INLINER.inline(clean))


def _convert(text: str) -> str:
    """``markdown.markdown(text)`` with this module's extensions, on this thread's instance."""
    md: markdown.Markdown | None = getattr(_md_local, "md", None)
    if md is None:
        md = markdown.Markdown(extensions=_MD_EXTENSIONS, output_format="html")
        _md_local.md = md
    try:
        return str(md.reset().convert(text))
    except BaseException:
        # A conversion that failed half way may leave parser state behind: start afresh.
        _md_local.md = None
        raise


# The result depends only on the source text, and strings are immutable, so one rendered
# document can be shared by every caller (lru_cache is thread-safe).
_cached_markdown_to_html = lru_cache(maxsize=_RENDER_CACHE_SIZE)(markdown_to_html)


def render_html(draft: Draft) -> str:
    """The HTML body that is sent for ``draft``, placeholders left for Netcore to fill.

    Markdown bodies are rendered once per distinct source text (a small cache of recent
    results), so the preview and the send that follows it, or the same draft sent again,
    do not render twice. :func:`markdown_to_html` itself always renders.
    """
    from netcore_desktop.core.message import BodyFormat

    if draft.body_format is BodyFormat.MARKDOWN:
        if len(draft.body) <= _RENDER_CACHE_MAX_SOURCE:
            return _cached_markdown_to_html(draft.body)
        return markdown_to_html(draft.body)
    return draft.body


def preview_html(draft: Draft, envelope_index: int = 0, rendered: str | None = None) -> str:
    """What the recipient of envelope ``envelope_index`` will see: the sent HTML, filled in."""
    body = render_html(draft) if rendered is None else rendered
    if not draft.envelopes:
        return body
    index = min(max(envelope_index, 0), len(draft.envelopes) - 1)
    return substitute(body, draft.envelopes[index].attributes)


class _TextExtractor(HTMLParser):
    """Collects readable text from HTML, keeping paragraphs, list items and link targets."""

    _BLOCK = frozenset(
        {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote",
         "pre", "hr", "section", "article", "header", "footer"}
    )
    _SKIP = frozenset({"style", "script", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        # Open links: target and where their text starts in ``parts``.
        self._href: list[tuple[str, int]] = []
        self._pre = 0
        # Open lists: the next item number of an <ol>, or None for a <ul>.
        self._lists: list[int | None] = []
        self._cell = 0

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        # The standard library asserts on malformed "<![" sections (e.g. "<![0"). Show the
        # "<![" as text, as a mail client does, and parse on after it. (Returning -1 instead
        # left the rest unparsed, and Python 3.11.2's close() then dropped it.)
        try:
            return int(super().parse_marked_section(i, report))
        except AssertionError:
            self.handle_data(self.rawdata[i : i + 3])
            return i + 3

    def _at_line_start(self) -> bool:
        for part in reversed(self.parts):
            if part:
                return part.endswith("\n")
        return True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
            return
        if tag in self._BLOCK:
            # A list inside a list item continues it rather than starting a paragraph.
            nested = tag in ("ul", "ol") and bool(self._lists)
            self.parts.append("" if nested else "\n\n")
            if tag == "pre":
                self._pre += 1
            elif tag == "ol":
                start = dict(attrs).get("start") or "1"
                self._lists.append(int(start) if start.isdigit() else 1)
            elif tag == "ul":
                self._lists.append(None)
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "tr":
            self.parts.append("\n")
            self._cell = 0
        elif tag == "li":
            indent = "  " * max(0, len(self._lists) - 1)
            number = self._lists[-1] if self._lists else None
            if number is None:
                self.parts.append(f"\n{indent}- ")
            else:
                self.parts.append(f"\n{indent}{number}. ")
                self._lists[-1] = number + 1
        elif tag in ("td", "th"):
            if self._cell:
                if self.parts:
                    self.parts[-1] = self.parts[-1].rstrip(" ")
                self.parts.append(" | ")
            self._cell += 1
        elif tag == "a":
            self._href.append((dict(attrs).get("href") or "", len(self.parts)))
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            if tag in ("ol", "ul") and self._lists:
                self._lists.pop()
                self.parts.append("" if self._lists else "\n\n")
                return
            self.parts.append("\n\n")
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
        elif tag == "a" and self._href:
            href, start = self._href.pop()
            text = "".join(self.parts[start:]).strip()
            # A link whose text already is its address (an autolink) is not repeated.
            if href and not href.startswith(("#", "mailto:")) and text != href:
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._pre:
            self.parts.append(data)
            return
        text = re.sub(r"\s+", " ", data)
        if self._at_line_start():
            text = text.lstrip(" ")
        self.parts.append(text)


def html_to_text(source: str) -> str:
    """A plain-text alternative of an HTML body (for SMTP and the preview's text tab)."""
    parser = _TextExtractor()
    try:
        parser.feed(source)
        parser.close()
        raw = "".join(parser.parts)
    except AssertionError:
        # Other malformed markup the standard parser asserts on: drop the tags instead.
        logger.debug("html_to_text: parser gave up, stripping tags instead")
        raw = html.unescape(re.sub(r"<[^>]*>", " ", source))
    text = "\n".join(line.rstrip() for line in raw.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def remote_urls(source: str) -> list[str]:
    """``http(s)`` URLs of images and other resources the HTML would load when opened."""
    pattern = re.compile(
        r"""(?:src|background)\s*=\s*["']?(https?://[^"'\s>]+)|url\(\s*["']?(https?://[^"')\s]+)""",
        re.IGNORECASE,
    )
    # Attribute values are HTML-escaped ("&amp;"); the address that is fetched is not.
    return [html.unescape(m.group(1) or m.group(2)) for m in pattern.finditer(source)]

