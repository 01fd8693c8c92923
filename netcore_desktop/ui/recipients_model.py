"""The test-recipients table: one row per envelope, one column per placeholder.

The columns are the To address, the To name, then every ``[%KEY%]`` found in the subject,
body and AMP part (in order of first use), then any other attribute the rows carry (marked
"not used"). Typing a new placeholder in the body therefore adds a column at once. The model
reads and writes only through the :class:`ComposeController`.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    Qt,
)
from PySide6.QtGui import QBrush, QColor, QPalette
from PySide6.QtWidgets import QApplication

from netcore_desktop.core.message import Draft
from netcore_desktop.ui.compose_controller import ComposeController
from netcore_desktop.ui.qt_compat import emit
from netcore_desktop.ui.row_model import Index

#: Columns before the attribute columns.
EMAIL_COLUMN = 0
NAME_COLUMN = 1
FIXED_COLUMNS = 2


class RecipientsModel(QAbstractTableModel):
    """Envelopes of the controller's draft as an editable table."""

    def __init__(self, controller: ComposeController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self._keys: list[str] = controller.attribute_columns()
        self._used: set[str] = set(controller.used_placeholders())
        self._rows = len(controller.draft.envelopes)
        controller.draft_changed.connect(self._on_draft_changed)

    # --- shape ----------------------------------------------------------------------------

    def attribute_keys(self) -> list[str]:
        """The attribute columns, in display order."""
        return list(self._keys)

    def column_for_key(self, key: str) -> int:
        """The column showing attribute ``key`` (-1 when not shown)."""
        try:
            return FIXED_COLUMNS + self._keys.index(key)
        except ValueError:
            return -1

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """One row per envelope."""
        return 0 if parent.isValid() else self._rows

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """Address, name, then one per attribute."""
        return 0 if parent.isValid() else FIXED_COLUMNS + len(self._keys)

    def _on_draft_changed(self, draft: Draft) -> None:
        keys = self._controller.attribute_columns()
        used = set(self._controller.used_placeholders())
        rows = len(draft.envelopes)
        if keys != self._keys or rows != self._rows:
            self.beginResetModel()
            self._keys, self._used, self._rows = keys, used, rows
            self.endResetModel()
            return
        self._used = used
        if rows:
            emit(self.dataChanged, self.index(0, 0), self.index(rows - 1, self.columnCount() - 1))

    # --- data -----------------------------------------------------------------------------

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles: To, Name, then each placeholder key."""
        if orientation == Qt.Orientation.Vertical:
            return str(section + 1) if role == Qt.ItemDataRole.DisplayRole else None
        if section == EMAIL_COLUMN:
            title, tip = self.tr("To"), self.tr("The recipient's address")
        elif section == NAME_COLUMN:
            title, tip = self.tr("Name"), self.tr("The recipient's display name")
        else:
            key = self._keys[section - FIXED_COLUMNS]
            if key in self._used:
                title = key
                tip = self.tr("Value for [%{key}%] in this recipient's message").format(key=key)
            else:
                title = self.tr("{key} (not used)").format(key=key)
                tip = self.tr(
                    "This value is sent but no [%{key}%] appears in the subject or body"
                ).format(key=key)
        if role == Qt.ItemDataRole.DisplayRole:
            return title
        if role == Qt.ItemDataRole.ToolTipRole:
            return tip
        return None

    def _value(self, row: int, column: int) -> str:
        env = self._controller.draft.envelopes[row]
        if column == EMAIL_COLUMN:
            return ", ".join(a.email for a in env.to)
        if column == NAME_COLUMN:
            return env.to[0].name if env.to else ""
        return env.attributes.get(self._keys[column - FIXED_COLUMNS], "")

    def _missing(self, row: int, column: int) -> bool:
        if column < FIXED_COLUMNS:
            return column == EMAIL_COLUMN and not self._value(row, column).strip()
        key = self._keys[column - FIXED_COLUMNS]
        env = self._controller.draft.envelopes[row]
        return key in self._used and not env.attributes.get(key, "").strip()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text; missing placeholder values get a warning colour and tooltip."""
        if not index.isValid() or index.row() >= self._rows:
            return None
        row, column = index.row(), index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return self._value(row, column)
        if role == Qt.ItemDataRole.ToolTipRole and self._missing(row, column):
            if column == EMAIL_COLUMN:
                return self.tr("This row has no address yet")
            key = self._keys[column - FIXED_COLUMNS]
            return self.tr(
                "No value: this recipient would see [%{key}%] literally"
            ).format(key=key)
        if role == Qt.ItemDataRole.BackgroundRole and self._missing(row, column):
            dark = QApplication.palette().color(QPalette.ColorRole.Base).lightness() < 128
            return QBrush(QColor("#5c3b00" if dark else "#fff1c2"))
        if role == Qt.ItemDataRole.ForegroundRole and column >= FIXED_COLUMNS:
            key = self._keys[column - FIXED_COLUMNS]
            if key not in self._used:
                return QBrush(QApplication.palette().color(QPalette.ColorRole.PlaceholderText))
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        """Every cell is editable."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable
        )

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        """Write the cell through the controller."""
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        row, column, text = index.row(), index.column(), str(value)
        if column == EMAIL_COLUMN:
            self._controller.set_envelope_email(row, text)
        elif column == NAME_COLUMN:
            self._controller.set_envelope_name(row, text)
        else:
            self._controller.set_attribute(row, self._keys[column - FIXED_COLUMNS], text)
        return True
