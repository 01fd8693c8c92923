"""Typing updates the preview in place: the reader keeps their place, and nothing leaks.

While only the body changes, the web preview replaces the body's content instead of loading
a new page. These tests check what a person notices: the new text shows up, the preview
does not jump back to the top on every keystroke, a change above the body (the styles of an
HTML message) still shows, and an in-place update blocks tracking pixels and never runs a
script from the message, exactly like a full load.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest
from PySide6.QtWebEngineCore import QWebEngineScript

from netcore_desktop.core.message import Address, BodyFormat, Draft, Envelope
from tests.ui._support import page_text
from tests.ui.test_preview import PixelServer, pixel_server  # noqa: F401 (fixture)

WAIT = 15000


def _draft(body: str, body_format: BodyFormat = BodyFormat.MARKDOWN) -> Draft:
    return Draft(
        sender=Address("news@mail.example.org"),
        subject="Spring news",
        body=body,
        body_format=body_format,
        envelopes=(Envelope(to=(Address("asha@example.net"),)),),
    )


def _wait_shown(qtbot: Any, window: Any) -> None:
    qtbot.waitUntil(
        lambda: window.preview.shown_generation == window._generation, timeout=WAIT
    )


def _type_at_end(qtbot: Any, window: Any, text: str) -> None:
    body = window.form.body
    body.setFocus()
    body.moveCursor(QTextCursor.MoveOperation.End)
    QTest.keyClicks(body, text)
    _wait_shown(qtbot, window)


def _text_shown(qtbot: Any, window: Any, wanted: str) -> str:
    seen = [""]

    def shows() -> bool:
        seen[0] = page_text(qtbot, window)
        return wanted in seen[0]

    qtbot.waitUntil(shows, timeout=WAIT)
    return seen[0]


def _run(qtbot: Any, window: Any, script: str) -> Any:
    found: list[Any] = []
    window.preview.renderer.page.runJavaScript(
        script, QWebEngineScript.ScriptWorldId.ApplicationWorld, found.append
    )
    qtbot.waitUntil(lambda: bool(found), timeout=WAIT)
    return found[0]


def test_typing_shows_the_new_text_without_jumping_to_the_top(
    qtbot: Any, make_window: Any
) -> None:
    window = make_window(restore_draft=False)
    assert window.preview.is_exact, "QtWebEngine should start in the test environment"
    paragraphs = "\n\n".join(f"Paragraph {i}: our spring range is here." for i in range(200))
    window.controller.load(_draft(paragraphs))
    _wait_shown(qtbot, window)
    _text_shown(qtbot, window, "Paragraph 199")
    page = window.preview.renderer.page
    _run(qtbot, window, "window.scrollTo(0, document.body.scrollHeight); 1")
    qtbot.waitUntil(lambda: page.scrollPosition().y() > 1000, timeout=WAIT)
    reading_at = page.scrollPosition().y()

    _type_at_end(qtbot, window, " Order today")
    text = _text_shown(qtbot, window, "Order today")
    assert "Paragraph 0:" in text  # the whole message, not only the new part
    assert page.scrollPosition().y() >= reading_at - 50, "the preview jumped back to the top"

    _type_at_end(qtbot, window, " and save")
    _text_shown(qtbot, window, "Order today and save")
    assert page.scrollPosition().y() >= reading_at - 50


def test_a_style_change_above_the_body_shows_too(qtbot: Any, make_window: Any) -> None:
    window = make_window(restore_draft=False)

    def html(colour: str) -> str:
        return (
            f"<html><head><style>p {{ color: {colour}; }}</style></head>"
            "<body><p id='p'>Spring news</p></body></html>"
        )

    window.controller.load(_draft(html("rgb(255, 0, 0)"), BodyFormat.HTML))
    _wait_shown(qtbot, window)
    colour = "getComputedStyle(document.getElementById('p')).color"
    qtbot.waitUntil(lambda: _run(qtbot, window, colour) == "rgb(255, 0, 0)", timeout=WAIT)
    window.controller.load(_draft(html("rgb(0, 0, 255)"), BodyFormat.HTML))
    _wait_shown(qtbot, window)
    qtbot.waitUntil(lambda: _run(qtbot, window, colour) == "rgb(0, 0, 255)", timeout=WAIT)


def test_an_in_place_update_blocks_pixels_and_runs_no_script(
    qtbot: Any, make_window: Any, pixel_server: PixelServer  # noqa: F811
) -> None:
    window = make_window(restore_draft=False)
    window.controller.load(_draft("<p>Spring news</p>", BodyFormat.HTML))
    _wait_shown(qtbot, window)
    _text_shown(qtbot, window, "Spring news")
    # Typed into the HTML body: everything above the body is unchanged, so this is an
    # in-place update of the loaded page.
    _type_at_end(
        qtbot,
        window,
        f'<img src="{pixel_server.url}/open.gif">'
        '<img src="nothing.gif" onerror="document.title=\'ran\'">'
        "<script>document.title='ran'</script><p>Ends here</p>",
    )
    _text_shown(qtbot, window, "Ends here")
    qtbot.waitUntil(lambda: window.preview.blocked_count == 1, timeout=WAIT)
    assert window.preview.remote_label.text().startswith("1 remote image was blocked")
    QTest.qWait(300)
    assert pixel_server.paths == []
    assert _run(qtbot, window, "document.title") != "ran"
