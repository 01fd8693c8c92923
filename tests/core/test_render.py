"""Markdown to email HTML, placeholder handling, the preview and the text alternative."""

from __future__ import annotations

import re

import markdown
import pytest

from netcore_desktop.core.message import Address, BodyFormat, Draft, Envelope
from netcore_desktop.core.render import (
    find_placeholders,
    html_to_text,
    markdown_to_html,
    missing_placeholders,
    preview_html,
    remote_urls,
    render_html,
    substitute,
)

RICH = """\
# Your order, [%FIRST_NAME%]

Thanks for shopping with us. Here is a **summary**:

| Item | Qty | Price |
|------|----:|------:|
| Tea  | 2   | 7.00  |
| Mug  | 1   | 12.50 |

1. Pack
2. Ship

- fast
- tracked

```python
total = price * qty  # <computed>
```

[Track it](https://shop.example.com/track?id=[%ORDER_ID%]&lang=en)

![Logo](https://cdn.example.com/logo.png)
"""


def tags_with_style(html: str, tag: str) -> list[str]:
    """The style attribute of every ``tag`` element."""
    return re.findall(rf"<{tag}\b[^>]*\bstyle=\"([^\"]*)\"", html)


@pytest.fixture(scope="module")
def rich_html() -> str:
    return markdown_to_html(RICH)


def test_tables_render_with_cells(rich_html: str) -> None:
    assert "<table" in rich_html
    assert re.search(r"<th[^>]*>Item</th>", rich_html)
    assert re.search(r"<td[^>]*>Mug</td>", rich_html)
    assert re.search(r"<td[^>]*>12.50</td>", rich_html)


def test_fenced_code_is_escaped_in_pre(rich_html: str) -> None:
    match = re.search(r"<pre[^>]*><code[^>]*>(.*?)</code></pre>", rich_html, re.S)
    assert match, "fenced code becomes <pre><code>"
    assert "total = price * qty  # &lt;computed&gt;" in match.group(1)


def test_lists_render(rich_html: str) -> None:
    assert re.search(r"<ol[^>]*>\s*<li[^>]*>Pack</li>\s*<li[^>]*>Ship</li>", rich_html)
    assert re.search(r"<ul[^>]*>\s*<li[^>]*>fast</li>", rich_html)


def test_links_and_images_render(rich_html: str) -> None:
    assert re.search(
        r'<a href="https://shop.example.com/track\?id=\[%ORDER_ID%\]&amp;lang=en"'
        r"[^>]*>Track it</a>",
        rich_html,
    )
    assert re.search(r'<img alt="Logo" src="https://cdn.example.com/logo.png"', rich_html)


def test_stylesheet_is_inlined_and_no_style_block_is_left(rich_html: str) -> None:
    assert "<style" not in rich_html
    assert rich_html.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in rich_html
    # Every element the stylesheet names carries its declarations itself.
    assert all("color: #0969da" in s for s in tags_with_style(rich_html, "a"))
    assert tags_with_style(rich_html, "a"), "links are styled"
    assert all("border: 1px solid #d0d7de" in s for s in tags_with_style(rich_html, "td"))
    assert len(tags_with_style(rich_html, "td")) == 6
    assert all("max-width: 100%" in s for s in tags_with_style(rich_html, "img"))
    assert "font-family: Menlo" in tags_with_style(rich_html, "pre")[0]
    assert "font-size: 26px" in tags_with_style(rich_html, "h1")[0]
    # The wrapper gets the body font and width, since <body> styles are often dropped.
    assert re.search(r'<div class="nd-body" style="[^"]*max-width: 640px', rich_html)


@pytest.mark.parametrize(
    "source",
    [
        "Hi [%FIRST_NAME%] and [%LAST_NAME%]!",
        "[%A_B%]_x_[%C_D%] __[%E__F%]__",
        "*[%FIRST_NAME%]* **[%LAST_NAME%]**",
        "[[%LINK_TEXT%]](https://example.com/[%USER_ID%]?ref=[%REF_CODE%])",
        "![[%ALT_TEXT%]](https://img.example.com/[%IMG_KEY%].png)",
        "`code [%IN_CODE%]`",
        "<https://example.com/u/[%USER_ID%]>",
        "| [%COL_A%] | [%COL_B%] |\n|---|---|\n| [%V_1%] | [%V_2%] |",
    ],
)
def test_placeholders_with_underscores_survive_markdown(source: str) -> None:
    html = markdown_to_html(source)
    for key in find_placeholders(source):
        assert f"[%{key}%]" in html, key
    # An autolink shows its address as its text, so its placeholder is there twice.
    assert html.count("[%") == source.count("[%") * (2 if source.startswith("<http") else 1)
    assert "ndph" not in html
    if "__[%" in source:
        # Emphasis around a placeholder is still emphasis, the key inside is left alone.
        assert "<strong>[%E__F%]</strong>" in html
    assert "<em>B" not in html and "<em>C" not in html


def test_placeholder_inside_link_url_stays_in_href() -> None:
    html = markdown_to_html("[Pay now](https://pay.example.com/?invoice=[%INVOICE_NO%])")
    assert 'href="https://pay.example.com/?invoice=[%INVOICE_NO%]"' in html


def test_text_that_looks_like_a_guard_word_is_kept() -> None:
    source = "Code ndph0x is literal, [%FIRST_NAME%] is not; ndphq1x neither."
    html = markdown_to_html(source)
    assert "Code ndph0x is literal, [%FIRST_NAME%] is not; ndphq1x neither." in html


def test_markdown_output_matches_markdown_library_for_plain_text() -> None:
    source = "Plain *text* with [a link](https://example.com)."
    fragment = markdown.markdown(source, extensions=["tables", "fenced_code"])
    html = markdown_to_html(source)
    assert re.sub(r' style="[^"]*"', "", html).count(fragment) == 1


def test_substitute_fills_known_keys_only() -> None:
    text = "Hi [%FIRST_NAME%], order [%ORDER%] ships [%WHEN%]."
    out = substitute(text, {"FIRST_NAME": "Asha", "ORDER": "A<1>"})
    assert out == "Hi Asha, order A<1> ships [%WHEN%]."
    escaped = substitute(text, {"FIRST_NAME": "Asha", "ORDER": "A<1>"}, escape=True)
    assert escaped == "Hi Asha, order A&lt;1&gt; ships [%WHEN%]."


def test_substitution_is_not_recursive() -> None:
    assert substitute("[%A%]", {"A": "[%B%]", "B": "no"}) == "[%B%]"


def _draft() -> Draft:
    return Draft(
        sender=Address("news@example.org"),
        subject="For [%FIRST_NAME%]",
        body="Hello **[%FIRST_NAME%]**, your code is [%CODE%].",
        envelopes=(
            Envelope(
                to=(Address("a@example.net"),), attributes={"FIRST_NAME": "Asha", "CODE": "1"}
            ),
            Envelope(to=(Address("b@example.net"),), attributes={"FIRST_NAME": "Ben", "CODE": "2"}),
        ),
    )


def test_preview_is_filled_per_envelope() -> None:
    draft = _draft()
    first = preview_html(draft, 0)
    second = preview_html(draft, 1)
    assert "Hello <strong>Asha</strong>, your code is 1." in first
    assert "Hello <strong>Ben</strong>, your code is 2." in second
    assert "[%" not in first + second
    # Out-of-range indexes clamp to the nearest envelope instead of failing.
    assert preview_html(draft, 99) == second
    assert preview_html(draft, -3) == first


def test_preview_is_substitute_of_the_sent_html() -> None:
    draft = _draft()
    sent = render_html(draft)
    assert "[%FIRST_NAME%]" in sent, "the sent HTML keeps placeholders for Netcore"
    for i, env in enumerate(draft.envelopes):
        assert preview_html(draft, i) == substitute(sent, env.attributes)
        assert preview_html(draft, i, rendered=sent) == substitute(sent, env.attributes)


def test_preview_without_envelopes_is_the_sent_html() -> None:
    draft = Draft(body="Hi [%X%]")
    assert preview_html(draft) == render_html(draft)


def test_html_body_format_is_not_run_through_markdown() -> None:
    body = "<p>*not emphasis* [%KEY_A%]</p>"
    draft = Draft(body=body, body_format=BodyFormat.HTML)
    assert render_html(draft) == body


def test_find_and_missing_placeholders() -> None:
    subject = "[%B%] and [%A%]"
    body = "[%A%] [%C_D%] [%bad key%] [%%]"
    assert find_placeholders(subject, body) == ["B", "A", "C_D"]
    assert missing_placeholders({"A": "x", "B": " ", "C_D": "y"}, subject, body) == ["B"]
    assert missing_placeholders({}, "no placeholders") == []


def test_text_alternative_is_readable(rich_html: str) -> None:
    text = html_to_text(rich_html)
    assert text.startswith("Your order, [%FIRST_NAME%]\n\nThanks for shopping with us.")
    assert "Here is a summary:" in text
    assert "Item | Qty | Price\nTea | 2 | 7.00\nMug | 1 | 12.50" in text
    assert "1. Pack\n2. Ship" in text
    assert "- fast\n- tracked" in text
    assert "total = price * qty  # <computed>" in text
    assert "Track it (https://shop.example.com/track?id=[%ORDER_ID%]&lang=en)" in text
    assert "[Logo]" in text
    assert "<" not in text.replace("<computed>", "")
    assert "font-family" not in text
    assert "\n\n\n" not in text
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_text_alternative_keeps_code_indentation_and_skips_style() -> None:
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<pre>def f():\n    return 1</pre><p>After&nbsp;&amp; more</p>"
        '<p><a href="mailto:x@example.org">mail us</a> or '
        '<a href="https://example.org/">https://example.org/</a></p></body></html>'
    )
    text = html_to_text(html)
    assert "def f():\n    return 1" in text
    assert "color:red" not in text and "T\n" not in text
    assert "After & more" in text
    assert "mail us or https://example.org/\n" in text, "no repeated or mailto targets"


def test_nested_lists_in_text() -> None:
    html = markdown_to_html("- one\n    - inner\n- two\n\n3. three\n4. four")
    text = html_to_text(html)
    assert "- one\n  - inner\n- two" in text
    assert "3. three\n4. four" in text


def test_remote_urls_lists_what_opening_would_load() -> None:
    html = (
        '<img src="https://cdn.example.com/a.png?x=1&amp;y=2">'
        "<td background='http://cdn.example.com/bg.jpg'>"
        '<div style="background-image: url(https://cdn.example.com/c.gif)"></div>'
        '<img src="cid:logo"><img src="data:image/png;base64,AAAA">'
        '<a href="https://example.com/not-loaded">link</a>'
    )
    assert remote_urls(html) == [
        "https://cdn.example.com/a.png?x=1&y=2",
        "http://cdn.example.com/bg.jpg",
        "https://cdn.example.com/c.gif",
    ]
    assert remote_urls(markdown_to_html(RICH)) == ["https://cdn.example.com/logo.png"]


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("<![0", "<![0\n"),
        ("<![0 hi <p>x</p>", "<![0 hi\n\nx\n"),
        ("a <![ b", "a <![ b\n"),
        ("<![if !mso]><p>y</p><![endif]>", "y\n"),
    ],
)
def test_text_alternative_survives_malformed_declarations(source: str, text: str) -> None:
    # The standard library's parser asserts on "<![0"; the text alternative must not, and
    # must keep what follows it (Python 3.11.2 dropped it where 3.11.7 kept it).
    assert html_to_text(source) == text
