"""Small helpers every view uses: naming widgets for accessibility, icons, resource paths.

Every control a person can reach gets an ``objectName`` (for tests and style sheets) and an
accessible name (for screen readers); :func:`named` does both in one call so no widget is
forgotten. Resources (icons, styles, the sample draft) live in the top-level ``resources/``
folder of the source tree, or in ``netcore_desktop/resources`` when installed from a wheel.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QApplication, QWidget

log = logging.getLogger(__name__)

W = TypeVar("W", bound=QWidget)


def named(widget: W, name: str, accessible: str, tooltip: str = "") -> W:
    """Give ``widget`` an object name, an accessible name and (optionally) a tooltip."""
    widget.setObjectName(name)
    widget.setAccessibleName(accessible)
    if tooltip:
        widget.setToolTip(tooltip)
    return widget


def repolish(widget: QWidget) -> None:
    """Apply the style sheet's rules again after a property they select on changed.

    Only the application's style sheet has such rules. Before it is set (while the window
    is being built) there is nothing to apply again, and setting it polishes every widget
    with its current properties; skipping the call then also keeps Python's wrapper of
    ``QStyle`` (~5 ms to create) out of start-up.
    """
    app = QCoreApplication.instance()
    if isinstance(app, QApplication) and app.styleSheet():
        style = widget.style()
        style.unpolish(widget)
        style.polish(widget)


def with_shortcut(text: str, shortcut: QKeySequence | str) -> str:
    """A tooltip that lists its shortcut, in the platform's native spelling."""
    seq = shortcut if isinstance(shortcut, QKeySequence) else QKeySequence(shortcut)
    native = seq.toString(QKeySequence.SequenceFormat.NativeText)
    return f"{text} ({native})" if native else text


def panel_action(
    owner: QWidget, name: str, text: str, shortcut: str, tip: str, icon_name: str = ""
) -> QAction:
    """An action of a panel, added to ``owner``, with its shortcut listed in its tooltip.

    The shortcut works only while focus is inside ``owner``, so panels docked in the main
    window never steal the compose form's shortcuts.
    """
    action = QAction(text, owner)
    action.setObjectName(name)
    if icon_name:
        action.setIcon(icon(icon_name))
    action.setShortcut(QKeySequence(shortcut))
    action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    action.setToolTip(with_shortcut(tip, shortcut))
    action.setStatusTip(tip)
    owner.addAction(action)
    return action


def set_tab_order(*widgets: QWidget) -> None:
    """Make Tab move through ``widgets`` in the order given."""
    for first, second in itertools.pairwise(widgets):
        QWidget.setTabOrder(first, second)


def tr(context: str, text: str) -> str:
    """Translate ``text`` outside a QObject method (module-level strings).

    The extractor (``pyside6-lupdate``) does not see strings passed through this helper
    (it reads ``tr("Context", "text")`` as a text with a comment); for a literal to reach
    the translators, write ``QCoreApplication.translate("Context", "text")`` in place.
    """
    return QCoreApplication.translate(context, text)


@cache
def resources_dir() -> Path:
    """The folder holding icons, styles and the sample draft."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "resources", here.parents[1] / "resources"]
    for candidate in candidates:
        if (candidate / "icons").is_dir():
            return candidate
    log.warning("resources folder not found (looked in %s)", candidates)
    return candidates[0]


@cache
def icon(name: str) -> QIcon:
    """The SVG icon ``resources/icons/<name>.svg`` (an empty icon when missing)."""
    path = resources_dir() / "icons" / f"{name}.svg"
    if not path.is_file():
        log.warning("missing icon %s", path)
        return QIcon()
    return QIcon(str(path))


def human_size(n: int) -> str:
    """A byte count the way people read it: 512 B, 12.3 KB, 4.1 MB."""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def state_label(state: str) -> str:
    """The word shown for an attempt's outcome or a job row's state, in the person's language."""
    label = _STATE_LABELS.get(state)
    return label() if label is not None else state


# Each literal in place, so that the extractor (pyside6-lupdate) finds it; looked up when
# shown, so that a translation installed later is used.
_STATE_LABELS: dict[str, Callable[[], str]] = {
    "pending": lambda: QCoreApplication.translate("State", "pending"),
    "sending": lambda: QCoreApplication.translate("State", "sending"),
    "sent": lambda: QCoreApplication.translate("State", "sent"),
    "queued": lambda: QCoreApplication.translate("State", "queued"),
    "refused": lambda: QCoreApplication.translate("State", "refused"),
    "failed": lambda: QCoreApplication.translate("State", "failed"),
    "unknown": lambda: QCoreApplication.translate("State", "unknown"),
    "skipped": lambda: QCoreApplication.translate("State", "skipped"),
    "cancelled": lambda: QCoreApplication.translate("State", "cancelled"),
    "not sent": lambda: QCoreApplication.translate("State", "not sent"),
}
