"""The preview: the right recipient's values, and not one request to anywhere.

A tracking pixel fetched by a preview would mark the test mail "opened" in Netcore's
reports. These tests put a real HTTP server on loopback, reference it from the body, and
check that the preview never calls it (until the person allows remote images), in the
QtWebEngine view and in the approximate fallback.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtWebEngineCore import QWebEnginePage

from netcore_desktop.core.message import Address, BodyFormat, Draft, Envelope
from netcore_desktop.ui.preview import MOBILE_WIDTH, PreviewPane

WAIT = 15000
_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


class PixelServer:
    """A loopback HTTP server that records every request made to it."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.send_header("Content-Length", str(len(_GIF)))
                self.end_headers()
                self.wfile.write(_GIF)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def pixel_server() -> Iterator[PixelServer]:
    server = PixelServer()
    yield server
    server.close()


def _html_draft(body: str) -> Draft:
    return Draft(
        sender=Address("news@mail.example.org"),
        subject="Hello [%FIRST_NAME%]",
        body=body,
        body_format=BodyFormat.HTML,
        envelopes=(
            Envelope(to=(Address("asha@example.net"),), attributes={"FIRST_NAME": "Asha"}),
            Envelope(to=(Address("tom@example.net"),), attributes={"FIRST_NAME": "Tom"}),
        ),
    )


def _wait_shown(qtbot: Any, window: Any) -> None:
    """Wait until the newest frame has finished loading in the view."""
    qtbot.waitUntil(
        lambda: window.preview.shown_generation == window._generation, timeout=WAIT
    )


def test_preview_makes_no_request_to_a_tracking_pixel(
    qtbot: Any, make_window: Any, pixel_server: PixelServer
) -> None:
    window = make_window(restore_draft=False)
    assert window.preview.is_exact, "QtWebEngine should start in the test environment"
    pixel = f"{pixel_server.url}/pixel.gif?u=[%FIRST_NAME%]"
    window.controller.load(_html_draft(f'<p>Hi [%FIRST_NAME%]</p><img src="{pixel}">'))
    _wait_shown(qtbot, window)
    qtbot.waitUntil(lambda: window.preview.blocked_count == 1, timeout=WAIT)
    assert pixel_server.paths == []
    bar = window.preview.remote_bar
    assert bar.isVisible()
    assert window.preview.remote_label.text().startswith("1 remote image was blocked")
    assert window.preview.remote_button.text() == "Allow remote images for this draft"

    # Allowing remote images for this draft loads them (so the test above can see a leak).
    window.preview.remote_button.click()
    assert window.controller.allow_remote_images
    qtbot.waitUntil(lambda: pixel_server.paths == ["/pixel.gif?u=Asha"], timeout=WAIT)
    assert "are loaded for this draft" in window.preview.remote_label.text()

    # A new draft starts blocked again.
    window.controller.load(_html_draft(f'<img src="{pixel_server.url}/again.gif">'))
    _wait_shown(qtbot, window)
    qtbot.waitUntil(lambda: window.preview.blocked_count == 1, timeout=WAIT)
    assert pixel_server.paths == ["/pixel.gif?u=Asha"]


def test_css_backgrounds_and_frames_are_blocked_too(
    qtbot: Any, make_window: Any, pixel_server: PixelServer
) -> None:
    window = make_window(restore_draft=False)
    body = (
        f'<div style="background-image:url({pixel_server.url}/bg.png)">x</div>'
        f'<link rel="stylesheet" href="{pixel_server.url}/style.css">'
        f'<iframe src="{pixel_server.url}/frame.html"></iframe>'
        f'<script src="{pixel_server.url}/script.js"></script>'
    )
    window.controller.load(_html_draft(body))
    _wait_shown(qtbot, window)
    # The background image and the style sheet are asked for and blocked; the frame is
    # refused as a navigation, and the script is never fetched (JavaScript is off).
    qtbot.waitUntil(lambda: window.preview.blocked_count >= 2, timeout=WAIT)
    blocked = {url.rsplit("/", 1)[1] for url in window.preview._blocked}
    assert {"bg.png", "style.css"} <= blocked
    assert pixel_server.paths == []


def test_approximate_preview_is_labelled_and_loads_nothing(
    qtbot: Any, make_window: Any, pixel_server: PixelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETCORE_DESKTOP_PREVIEW", "basic")
    window = make_window(restore_draft=False)
    assert not window.preview.is_exact
    assert window.preview.approx_label.isVisible()
    assert "Approximate preview" in window.preview.approx_label.text()
    window.controller.load(
        _html_draft(f'<p>Hi [%FIRST_NAME%]</p><img src="{pixel_server.url}/p.gif">')
    )
    _wait_shown(qtbot, window)
    browser = window.preview.renderer
    assert "Hi Asha" in browser.toPlainText()
    assert window.preview.blocked_count == 1
    assert not window.preview.remote_button.isVisible()  # this view cannot load them at all
    assert pixel_server.paths == []


def test_switching_recipient_shows_their_values(qtbot: Any, make_window: Any) -> None:
    window = make_window(restore_draft=False)
    window.controller.load(_html_draft("<p>Hi [%FIRST_NAME%]</p>"))
    _wait_shown(qtbot, window)
    assert window.preview.subject_label.text() == "Hello Asha"
    window.preview.recipient.setCurrentIndex(1)
    assert window.controller.selected_envelope == 1
    qtbot.waitUntil(lambda: window.preview.subject_label.text() == "Hello Tom", timeout=WAIT)
    _wait_shown(qtbot, window)
    found: list[str] = []
    window.preview.renderer.page.toPlainText(found.append)
    qtbot.waitUntil(lambda: bool(found), timeout=WAIT)
    assert found[0].strip() == "Hi Tom"
    assert "To tom@example.net" in window.preview.from_label.text()
    qtbot.waitUntil(lambda: "Hi Tom" in window.preview.text_view.toPlainText(), timeout=WAIT)


def test_mobile_and_desktop_widths(qtbot: Any, make_window: Any) -> None:
    window = make_window(restore_draft=False)
    view = window.preview.renderer
    window.preview.mobile_button.click()
    qtbot.waitUntil(lambda: view.width() == MOBILE_WIDTH, timeout=WAIT)
    window.preview.desktop_button.click()
    qtbot.waitUntil(lambda: view.width() > MOBILE_WIDTH, timeout=WAIT)
    assert "Ctrl+Shift+M" in window.preview.mobile_button.toolTip()


def test_link_clicks_are_reported_not_followed(qtbot: Any) -> None:
    pane = PreviewPane()
    qtbot.addWidget(pane)
    pane.show()
    pane.create_web_view()
    page = pane.renderer.page
    with qtbot.waitSignal(pane.link_requested, timeout=WAIT) as clicked:
        allowed = page.acceptNavigationRequest(
            QUrl("https://example.com/offer"),
            QWebEnginePage.NavigationType.NavigationTypeLinkClicked,
            True,
        )
    assert allowed is False
    assert clicked.args[0].toString() == "https://example.com/offer"
    # Other navigations away from the message are refused silently.
    assert not page.acceptNavigationRequest(
        QUrl("https://example.com/redirect"),
        QWebEnginePage.NavigationType.NavigationTypeRedirect,
        True,
    )
    assert not page.acceptNavigationRequest(
        QUrl("file:///etc/passwd"), QWebEnginePage.NavigationType.NavigationTypeTyped, True
    )
    assert page.settings().testAttribute(page.settings().WebAttribute.JavascriptEnabled) is False
    assert pane.renderer.profile.isOffTheRecord()


def test_preview_and_request_come_from_the_same_html(qtbot: Any, make_window: Any) -> None:
    window = make_window(restore_draft=False)
    window.controller.load(
        Draft(
            sender=Address("news@mail.example.org"),
            subject="S",
            body="# Title\n\nHi [%FIRST_NAME%]",
            envelopes=(
                Envelope(to=(Address("asha@example.net"),), attributes={"FIRST_NAME": "Ann"}),
            ),
        )
    )
    qtbot.waitUntil(lambda: "Title" in window.preview.json_view.toPlainText(), timeout=WAIT)
    import json

    payload = json.loads(window.preview.json_view.toPlainText())
    sent_html = payload["content"][0]["value"]
    assert "[%FIRST_NAME%]" in sent_html
    _wait_shown(qtbot, window)
    assert window.preview._frame is not None
    assert window.preview._frame.html == sent_html.replace("[%FIRST_NAME%]", "Ann")
