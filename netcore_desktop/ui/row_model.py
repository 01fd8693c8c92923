"""The shared shape of the window's read-only tables: a list of rows, named columns.

The response log, the history's results and a bulk job's rows are each a list of row
values shown one column per name. :class:`RowTableModel` answers the row and column
counts and the header from that list, the column names and their titles; each table
says only what its cells show.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

RowT = TypeVar("RowT")
Index = QModelIndex | QPersistentModelIndex


class RowTableModel(QAbstractTableModel, Generic[RowT]):
    """Rows of ``RowT`` in ``self._rows``, one column per name in :attr:`columns`.

    Subclasses set :attr:`columns`, put each column's title in ``self._titles`` and answer
    :meth:`data`, where :meth:`_cell` gives the row and column name of an index.
    """

    #: The column names, in order.
    columns: tuple[str, ...] = ()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[RowT] = []
        self._titles: dict[str, str] = {}

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """Rows shown."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """One per name in :attr:`columns`."""
        return 0 if parent.isValid() else len(self.columns)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self._titles[self.columns[section]]
        return None

    def _cell(self, index: Index) -> tuple[RowT, str] | None:
        """The row and the column name at ``index`` (``None`` when it shows nothing)."""
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        return self._rows[index.row()], self.columns[index.column()]
