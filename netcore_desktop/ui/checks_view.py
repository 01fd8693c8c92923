"""The pre-send checks beside the preview; clicking one jumps to the field it names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from netcore_desktop.ui.common import icon, named, repolish
from netcore_desktop.ui.qt_compat import emit

if TYPE_CHECKING:
    # Imported lazily at run time: the checks module loads the renderer, which the GUI
    # thread does not need before the window is on screen.
    from netcore_desktop.core.checks import Problem

#: Icon per severity (``Severity`` values are these strings).
_ICONS = {"error": "error", "warning": "warning", "info": "info"}
_ROLE = Qt.ItemDataRole.UserRole


class ChecksView(QWidget):
    """A list of problems, errors first; activating one emits :attr:`field_activated`."""

    #: (field name, envelope index or -1, placeholder key or "")
    field_activated = Signal(str, int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "checksPane", self.tr("Checks"))
        self.summary = named(QLabel(), "checksSummary", self.tr("Checks summary"))
        self.summary.setProperty("role", "checksSummary")
        self.summary.setWordWrap(True)
        self.list = named(
            QListWidget(), "checksList", self.tr("Pre-send checks"),
            self.tr("Click a check to jump to its field"),
        )
        self.list.setWordWrap(True)
        self.list.setSpacing(2)
        self.list.setVerticalScrollMode(QListWidget.ScrollMode.ScrollPerPixel)
        self.list.setUniformItemSizes(False)
        self.list.itemClicked.connect(self._activate)
        self.list.itemActivated.connect(self._activate)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 8, 8, 4)
        title = QLabel(self.tr("Checks"))
        title.setProperty("role", "paneTitle")
        layout.addWidget(title)
        layout.addWidget(self.summary)
        layout.addWidget(self.list, 1)
        self._problems: tuple[Problem, ...] = ()
        self.set_problems(())

    @property
    def problems(self) -> tuple[Problem, ...]:
        """The problems shown now."""
        return self._problems

    def set_problems(self, problems: Sequence[Problem]) -> None:
        """Show ``problems`` (errors, warnings, then information)."""
        problems = tuple(problems)
        if problems == self._problems and self.list.count() == len(problems):
            return
        self._problems = problems
        self.list.clear()
        for problem in problems:
            item = QListWidgetItem(icon(_ICONS[str(problem.severity)]), problem.message)
            item.setData(_ROLE, problem)
            item.setToolTip(problem.message)
            self.list.addItem(item)
        errors = sum(p.severity == "error" for p in problems)
        warnings = sum(p.severity == "warning" for p in problems)
        if errors:
            text = self.tr("{e} to fix before sending").format(
                e=self.tr("1 problem") if errors == 1 else self.tr("{n} problems").format(n=errors)
            )
            state = "error"
        elif warnings:
            text = self.tr("Ready, with {w} to look at").format(
                w=self.tr("1 warning") if warnings == 1
                else self.tr("{n} warnings").format(n=warnings)
            )
            state = "warning"
        else:
            text = self.tr("Ready to send")
            state = "ok"
        self.summary.setText(text)
        self.summary.setProperty("state", state)
        repolish(self.summary)

    def _activate(self, item: QListWidgetItem) -> None:
        from netcore_desktop.core.checks import Problem, parse_field

        problem = item.data(_ROLE)
        if not isinstance(problem, Problem):
            return
        ref = parse_field(problem.field)
        envelope = ref.envelope if ref.envelope is not None else problem.envelope
        emit(self.field_activated,
            ref.name, -1 if envelope is None else envelope, ref.key or ""
        )
