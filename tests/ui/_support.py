"""Helpers shared by the window tests: answering message boxes, reading the preview."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import QCoreApplication, QEvent, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget
from pytestqt.exceptions import TimeoutError as QtTimeoutError

M = TypeVar("M", bound=QWidget)


def when_modal(kind: type[M], act: Callable[[M], None], within: float = 10) -> Callable[[], None]:
    """A timer callback that acts on the next modal ``kind`` once it shows (within ``within`` s).

    A modal dialog runs its own event loop (``exec``): test code waiting outside it does not
    run until it closes, but timers still fire inside it.
    """
    deadline = time.monotonic() + within

    def look() -> None:
        modal = QApplication.activeModalWidget()
        if not isinstance(modal, kind):
            if time.monotonic() < deadline:
                QTimer.singleShot(20, look)
            return
        act(modal)

    return look


def answer_box(button: str, seen: list[str]) -> Callable[[], None]:
    """Click ``button`` on the next modal message box (within 10 s), keeping its text."""

    def click(box: QMessageBox) -> None:
        seen.append(box.text())
        for candidate in box.buttons():
            if candidate.text().replace("&", "") == button:
                candidate.click()
                return
        raise AssertionError(f"no {button!r} button on {box.text()!r}")

    return when_modal(QMessageBox, click)


def dispose(widget: Any) -> None:
    """Shut a support panel down and let Qt delete it now."""
    widget.shutdown()
    widget.close()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()


def page_text(qtbot: Any, owner: Any) -> str:
    """The text ``owner``'s web preview shows now ("" when the page was busy loading)."""
    found: list[str] = []
    owner.preview.renderer.page.toPlainText(found.append)
    try:
        qtbot.waitUntil(lambda: bool(found), timeout=2000)
    except QtTimeoutError:
        return ""  # a load in progress drops the callback: the caller asks again
    return found[0]
