"""The response log's table model: one row per request, newest first, bounded.

At most :data:`MAX_ROWS` rows are kept, and request bodies over a total of
:data:`MAX_BODY_BYTES` are dropped from the oldest rows first (the history keeps them), so a
long session with large attachments cannot grow without bound.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor

from netcore_desktop.ui.common import state_label
from netcore_desktop.ui.row_model import Index, RowTableModel
from netcore_desktop.ui.send_worker import LogEntry

#: Rows kept in memory.
MAX_ROWS: Final = 5000
#: Request bytes kept in memory over all rows.
MAX_BODY_BYTES: Final = 64 * 1024 * 1024

COLUMNS: Final = (
    "time", "profile", "endpoint", "status", "meaning", "message_id", "latency", "recipients"
)
#: Role returning the whole :class:`LogEntry` of a row.
ENTRY_ROLE: Final = Qt.ItemDataRole.UserRole + 1


class ResponseLogModel(RowTableModel[LogEntry]):
    """Log entries, newest first."""

    columns = COLUMNS

    def __init__(
        self, parent: QObject | None = None, max_rows: int = MAX_ROWS,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        super().__init__(parent)
        self._max_rows = max_rows
        self._max_body = max_body_bytes
        self._body_bytes = 0
        self._titles = {
            "time": self.tr("Time"),
            "profile": self.tr("Profile"),
            "endpoint": self.tr("Endpoint"),
            "status": self.tr("Status"),
            "meaning": self.tr("Meaning"),
            "message_id": self.tr("Message id"),
            "latency": self.tr("Latency"),
            "recipients": self.tr("Recipients"),
        }

    # --- shape ---------------------------------------------------------------------------

    def entry(self, row: int) -> LogEntry:
        """The entry shown in ``row`` (0 is the newest)."""
        return self._rows[row]

    def entries(self) -> list[LogEntry]:
        """Every entry, newest first."""
        return list(self._rows)

    # --- adding ----------------------------------------------------------------------------

    def add(self, entry: LogEntry) -> None:
        """Insert ``entry`` at the top; drop the oldest rows beyond the limit."""
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._rows.insert(0, entry)
        self._body_bytes += _body_size(entry)
        self.endInsertRows()
        if len(self._rows) > self._max_rows:
            first = self._max_rows
            self.beginRemoveRows(QModelIndex(), first, len(self._rows) - 1)
            for old in self._rows[first:]:
                self._body_bytes -= _body_size(old)
            del self._rows[first:]
            self.endRemoveRows()
        self._trim_bodies()

    def _trim_bodies(self) -> None:
        row = len(self._rows) - 1
        while self._body_bytes > self._max_body and row > 0:
            entry = self._rows[row]
            size = _body_size(entry)
            if size and entry.request is not None:
                self._rows[row] = replace(
                    entry,
                    request=replace(entry.request, body_bytes=b""),
                    response_body=entry.response_body[:4096],
                )
                self._body_bytes -= size
            row -= 1

    def clear(self) -> None:
        """Forget every row."""
        self.beginResetModel()
        self._rows.clear()
        self._body_bytes = 0
        self.endResetModel()

    # --- data ------------------------------------------------------------------------------

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text, colours by outcome, the entry itself for :data:`ENTRY_ROLE`."""
        cell = self._cell(index)
        if cell is None:
            return None
        entry, column = cell
        if role == ENTRY_ROLE:
            return entry
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(entry, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            if column in ("meaning", "endpoint", "recipients", "message_id"):
                return self._text(entry, column)
            return None
        if role == Qt.ItemDataRole.ForegroundRole and column in ("status", "meaning"):
            return QBrush(QColor(_outcome_colour(entry)))
        if role == Qt.ItemDataRole.TextAlignmentRole and column in ("status", "latency"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _text(self, entry: LogEntry, column: str) -> str:
        if column == "time":
            return entry.time.strftime("%H:%M:%S")
        if column == "profile":
            return entry.profile
        if column == "endpoint":
            return entry.endpoint
        if column == "status":
            return str(entry.status_code) if entry.status_code is not None else "—"
        if column == "meaning":
            return entry.meaning
        if column == "message_id":
            return entry.message_id
        if column == "latency":
            return f"{entry.latency_ms:.0f} ms" if entry.latency_ms is not None else ""
        if column == "recipients":
            shown = ", ".join(entry.recipients[:3])
            more = len(entry.recipients) - 3
            return shown + (self.tr(" +{n} more").format(n=more) if more > 0 else "")
        return ""


def _body_size(entry: LogEntry) -> int:
    size = len(entry.response_body)
    if entry.request is not None:
        size += len(entry.request.body_bytes)
    return size


def _outcome_colour(entry: LogEntry) -> str:
    if entry.outcome == "sent":
        return "#1a7f37"
    if entry.outcome in ("queued", "cancelled"):
        return "#9a6700"
    return "#cf222e"


class LogFilterModel(QSortFilterProxyModel):
    """Filters rows by any column's text (case-insensitive), keeping newest first."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setFilterKeyColumn(-1)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._needle = ""

    def set_text(self, text: str) -> None:
        """Show only rows containing ``text`` (empty: every row)."""
        self._needle = text.strip().lower()
        self.setFilterFixedString(text.strip())

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        """Match any column, the correlation tokens or the outcome."""
        if super().filterAcceptsRow(source_row, source_parent):
            return True
        needle = self._needle
        if not needle:
            return True
        model = self.sourceModel()
        if not isinstance(model, ResponseLogModel):
            return False
        entry = model.entry(source_row)
        haystack = " ".join(
            (*entry.tokens, entry.outcome, state_label(entry.outcome), *entry.recipients)
        ).lower()
        return needle in haystack
