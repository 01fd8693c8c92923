"""Links in the preview open outside only after a question, and only web and email links.

A click on a link in a preview never navigates the preview: the window asks first, showing
the URL as the recipient gets it, and only "Open" hands it to the system. The system's side
is observed through Qt's own mechanism: ``QDesktopServices.openUrl`` gives a URL to the
handler registered for its scheme, so a test registers a real receiver for http(s), mailto,
file and ftp and sees exactly what would have reached the browser or mail program. Clicks
are real mouse clicks on the QtWebEngine view (and on the QTextBrowser fallback).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import QObject, QPoint, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from netcore_desktop.core.history import History
from netcore_desktop.core.message import Address, BodyFormat, Draft, Envelope
from netcore_desktop.core.profiles import Profile
from netcore_desktop.core.secrets import SecretStore
from netcore_desktop.core.sending import SendService
from netcore_desktop.ui.history_browser import HistoryBrowser

from ._support import answer_box, dispose

WAIT = 15000
#: Height of each link block in the test pages, so that a click lands on a known link.
ROW = 50
SCHEMES = ("http", "https", "mailto", "file", "ftp")


class SystemOpener(QObject):
    """Stands where the browser and mail program are: records every URL handed over."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    @Slot(QUrl)
    def open_url(self, url: QUrl) -> None:
        self.urls.append(url.toString())


@pytest.fixture
def opener() -> Iterator[SystemOpener]:
    receiver = SystemOpener()
    for scheme in SCHEMES:
        QDesktopServices.setUrlHandler(scheme, receiver, "open_url")
    yield receiver
    for scheme in SCHEMES:
        QDesktopServices.unsetUrlHandler(scheme)


def _links_draft(*hrefs: str) -> Draft:
    """A draft whose body is a column of big links, the first at the top."""
    links = "".join(
        f'<a href="{href}"{" target=_blank" if "blank" in href else ""} style="display:block;'
        f'height:{ROW}px;margin:0;padding:0">Link {i}</a>'
        for i, href in enumerate(hrefs)
    )
    return Draft(
        sender=Address("news@mail.example.org"),
        subject="Links for [%FIRST_NAME%]",
        body=f'<body style="margin:0;padding:0">{links}</body>',
        body_format=BodyFormat.HTML,
        envelopes=(Envelope(to=(Address("asha@example.net"),), attributes={"FIRST_NAME": "Asha"}),),
    )


def _click_link(view: Any, index: int) -> None:
    """A real left click on link ``index`` of a :func:`_links_draft` page."""
    QTest.mouseClick(view.focusProxy(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, QPoint(40, index * ROW + ROW // 2))


def _any_box(seen: list[str]) -> Callable[[], None]:
    """Keep watching for message boxes; record and close any that opens (stop it after)."""

    def look() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.reject()

    return look


def _show(qtbot: Any, window: Any, draft: Draft) -> None:
    window.controller.load(draft)
    qtbot.waitUntil(lambda: window.preview.shown_generation == window._generation,
                    timeout=WAIT)


def test_a_link_asks_first_cancel_opens_nothing_and_open_hands_it_to_the_browser(
    qtbot: Any, make_window: Any, opener: SystemOpener
) -> None:
    window = make_window(restore_draft=False)
    assert window.preview.is_exact
    _show(qtbot, window, _links_draft("https://example.com/offer?u=[%FIRST_NAME%]"))
    view = window.preview.renderer.view

    seen: list[str] = []
    QTimer.singleShot(0, answer_box("Cancel", seen))
    with qtbot.waitSignal(window.preview.link_requested, timeout=WAIT):
        _click_link(view, 0)
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT)
    # The question shows the URL the recipient gets (their value filled in).
    assert seen[0].startswith("Open this link in your web browser?")
    assert "https://example.com/offer?u=Asha" in seen[0]
    assert "tracking" in seen[0]
    qtbot.wait(200)
    assert opener.urls == []

    QTimer.singleShot(0, answer_box("Open", seen))
    _click_link(view, 0)
    qtbot.waitUntil(lambda: opener.urls == ["https://example.com/offer?u=Asha"], timeout=WAIT)
    assert len(seen) == 2
    # The preview itself stayed on the message.
    assert window.preview.renderer.page.url().toString() == "about:blank"


def test_mailto_and_new_window_links_ask_and_other_kinds_are_refused(
    qtbot: Any, make_window: Any, opener: SystemOpener
) -> None:
    window = make_window(restore_draft=False)
    _show(qtbot, window, _links_draft(
        "mailto:help@example.com?subject=Hi", "https://example.com/blank",
        "file:///etc/passwd", "javascript:alert(1)", "ftp://example.com/file",
    ))
    view = window.preview.renderer.view
    seen: list[str] = []
    QTimer.singleShot(0, answer_box("Open", seen))
    _click_link(view, 0)
    qtbot.waitUntil(lambda: opener.urls == ["mailto:help@example.com?subject=Hi"],
                    timeout=WAIT)
    assert seen[0].startswith("Write this email in your mail program?")
    assert "mailto:help@example.com?subject=Hi" in seen[0]
    # A target=_blank link is caught the same way, not opened in a new window.
    QTimer.singleShot(0, answer_box("Cancel", seen))
    _click_link(view, 1)
    qtbot.waitUntil(lambda: len(seen) == 2, timeout=WAIT)
    assert "https://example.com/blank" in seen[1]

    # file: and ftp: links open nothing: a message says so, and what does open.
    for index, shown in ((2, "file:///etc/passwd"), (4, "ftp://example.com/file")):
        QTimer.singleShot(0, answer_box("OK", seen))
        count = len(seen)
        _click_link(view, index)
        qtbot.waitUntil(lambda count=count: len(seen) == count + 1, timeout=WAIT)
        assert seen[-1].startswith("This link was not opened") and shown in seen[-1]
    # JavaScript is off: a javascript: link does nothing at all, and asks nothing.
    boxes: list[str] = []
    watcher = QTimer()
    watcher.timeout.connect(_any_box(boxes))
    watcher.start(20)
    try:
        _click_link(view, 3)
        qtbot.wait(500)
    finally:
        watcher.stop()
    assert boxes == []
    assert opener.urls == ["mailto:help@example.com?subject=Hi"]
    assert window.preview.renderer.page.url().toString() == "about:blank"


def test_the_approximate_preview_asks_before_opening_a_link_too(
    qtbot: Any, make_window: Any, opener: SystemOpener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NETCORE_DESKTOP_PREVIEW", "basic")
    window = make_window(restore_draft=False)
    assert not window.preview.is_exact
    _show(qtbot, window, _links_draft("https://example.com/offer?u=[%FIRST_NAME%]"))
    browser = window.preview.renderer
    cursor = browser.document().find("Link 0")
    assert not cursor.isNull()
    where = browser.cursorRect(cursor).center() - QPoint(10, 0)  # inside the link text
    seen: list[str] = []
    QTimer.singleShot(0, answer_box("Cancel", seen))
    QTest.mouseClick(browser.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, where)
    qtbot.waitUntil(lambda: bool(seen), timeout=WAIT)
    assert "https://example.com/offer?u=Asha" in seen[0]
    assert opener.urls == []
    QTimer.singleShot(0, answer_box("Open", seen))
    QTest.mouseClick(browser.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, where)
    qtbot.waitUntil(lambda: opener.urls == ["https://example.com/offer?u=Asha"], timeout=WAIT)


def test_links_in_the_history_preview_ask_and_refuse_like_the_compose_preview(
    qtbot: Any, sandbox_profile: Profile, opener: SystemOpener
) -> None:
    history = History()
    service = SendService(sandbox_profile, SecretStore(), history)
    outcome = service.send(service.prepare(_links_draft(
        "https://example.com/offer?u=[%FIRST_NAME%]", "mailto:help@example.com",
        "file:///etc/passwd",
    )))
    service.close()
    history.close()
    assert outcome.ok and outcome.attempt_id is not None

    browser = HistoryBrowser()
    browser.resize(1200, 900)
    browser.show()
    try:
        qtbot.waitUntil(lambda: browser.preview.renderer is not None, timeout=WAIT)
        qtbot.waitUntil(lambda: browser.model.rowCount() == 1, timeout=WAIT)
        with qtbot.waitSignal(browser.entry_shown, timeout=WAIT):
            browser.select_entry(outcome.attempt_id)
        qtbot.waitUntil(lambda: browser.preview.subject_label.text() == "Links for Asha",
                        timeout=WAIT)
        qtbot.waitUntil(lambda: browser.preview.shown_generation >= 0, timeout=WAIT)
        view = browser.preview.renderer.view

        seen: list[str] = []
        QTimer.singleShot(0, answer_box("Open", seen))
        with qtbot.waitSignal(browser.status_message, timeout=WAIT) as status:
            _click_link(view, 0)
        assert seen[0].startswith("Open this link in your web browser?")
        assert "https://example.com/offer?u=Asha" in seen[0]
        assert status.args[0] == "Opened https://example.com/offer?u=Asha"

        QTimer.singleShot(0, answer_box("Cancel", seen))
        _click_link(view, 1)
        qtbot.waitUntil(lambda: len(seen) == 2, timeout=WAIT)
        assert seen[1].startswith("Write this email in your mail program?")

        QTimer.singleShot(0, answer_box("OK", seen))
        _click_link(view, 2)
        qtbot.waitUntil(lambda: len(seen) == 3, timeout=WAIT)
        assert seen[2].startswith("This link was not opened: only web (http, https) and email")
        assert "file:///etc/passwd" in seen[2]
        assert opener.urls == ["https://example.com/offer?u=Asha"]
    finally:
        dispose(browser)
