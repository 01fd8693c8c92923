"""Every control can be found by name (tests, screen readers) and every shortcut is told."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QScrollBar,
    QTabBar,
    QTableView,
    QToolBar,
    QWidget,
)


def _internal(widget: QWidget) -> bool:
    """Parts that Qt builds inside a named control (its scroll bars, tab bar, editors)."""
    if isinstance(widget, QScrollBar | QHeaderView | QTabBar):
        return True
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractSpinBox | QComboBox | QTabBar | QHeaderView):
            return True
        if isinstance(parent, QTableView) and isinstance(widget, QLineEdit):
            return True  # a cell editor
        if parent.objectName() == "previewWebView":
            return True  # Chromium's render widget inside the named view
        parent = parent.parentWidget()
    if isinstance(widget, QAbstractButton) and isinstance(widget.parentWidget(), QToolBar):
        return widget.objectName() == "qt_toolbar_ext_button"
    return isinstance(widget.parentWidget(), QAbstractScrollArea) and not widget.objectName()


def test_every_reachable_control_has_a_name_and_an_accessible_name(
    qtbot: Any, make_window: Any
) -> None:
    window = make_window(use_sample_draft=True, restore_draft=False)
    missing = []
    checked = 0
    for tab in range(window.form.tabs.count()):
        window.form.tabs.setCurrentIndex(tab)
        for widget in window.findChildren(QWidget):
            if not widget.isVisible() or _internal(widget):
                continue
            if not widget.focusPolicy() & Qt.FocusPolicy.TabFocus:
                continue
            checked += 1
            if not widget.objectName() or not widget.accessibleName():
                missing.append(f"{type(widget).__name__} {widget.objectName()!r}")
    assert checked > 30
    assert missing == []


def test_every_shortcut_is_in_its_tooltip(qtbot: Any, make_window: Any) -> None:
    window = make_window(restore_draft=False)
    with_shortcut = [a for a in window.actions() if not a.shortcut().isEmpty()]
    assert {a.objectName() for a in with_shortcut} >= {
        "actionSend", "actionSendTest", "actionNew", "actionOpen", "actionSave", "actionQuit",
        "actionProfiles", "actionToggleLog",
    }
    for action in with_shortcut:
        native = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        assert native in action.toolTip(), action.objectName()
    assert "Ctrl+Return" in window.send_button.toolTip()
    assert "Ctrl+Shift+Return" in window.test_button.toolTip()


def test_tab_order_follows_the_form(qtbot: Any, make_window: Any) -> None:
    window = make_window(restore_draft=False)
    form = window.form
    expected = [
        form.sender_email, form.sender_name, form.to_edit, form.cc_edit, form.bcc_edit,
        form.reply_to, form.subject, form.body_format, form.body,
    ]

    def tab_from(widget: QWidget, count: int) -> list[QWidget]:
        chain: list[QWidget] = []
        widget = widget.nextInFocusChain()
        while len(chain) < count:
            if widget.focusPolicy() & Qt.FocusPolicy.TabFocus and widget.isVisible():
                chain.append(widget)
            widget = widget.nextInFocusChain()
        return chain

    assert tab_from(form.sender_email, len(expected) - 1) == expected[1:]
    # From the profile bar's Send button, Tab goes to the first field of the form.
    assert tab_from(window.send_button, 1) == [form.sender_email]
