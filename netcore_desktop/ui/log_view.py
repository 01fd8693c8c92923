"""The response log at the bottom: a filterable table and the details of the selected row.

The details pane shows the request as it went out (key masked by the client) and the answer.
"Copy as cURL" and "Copy as Python" use :func:`netcore_desktop.core.client.to_curl` and
:func:`~netcore_desktop.core.client.to_python`, so the copied command sends exactly the same
bytes; the key stays masked in them.
"""

from __future__ import annotations

import json
import logging

from PySide6.QtCore import QCoreApplication, QItemSelection, QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from netcore_desktop.ui.common import icon, named, set_tab_order, state_label, with_shortcut
from netcore_desktop.ui.log_model import COLUMNS, ENTRY_ROLE, LogFilterModel, ResponseLogModel
from netcore_desktop.ui.qt_compat import emit
from netcore_desktop.ui.send_worker import LogEntry

log = logging.getLogger(__name__)

#: Request and response bodies longer than this are shown cut (the copy buttons use all).
_SHOW_LIMIT = 200_000
#: While sends finish in a burst, the newest row is selected (and its details laid out) at
#: most once per this interval; a lone send is still selected at once.
SELECT_NEWEST_MS = 150


def _pretty(text: str) -> str:
    if len(text) > _SHOW_LIMIT:
        return text[:_SHOW_LIMIT] + "\n…"
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def describe_entry(entry: LogEntry) -> str:
    """The details pane's text for ``entry``: request (key masked), answer, field errors."""

    # Named ``translate`` so that the extractor (pyside6-lupdate) finds each literal.
    translate = QCoreApplication.translate
    lines: list[str] = []
    status = str(entry.status_code) if entry.status_code is not None else "—"
    outcome = state_label(entry.outcome)
    lines.append(f"{entry.time:%Y-%m-%d %H:%M:%S %z}  ·  {entry.profile}  ·  {outcome}")
    lines.append(entry.meaning)
    if entry.message_id:
        lines.append(translate("ResponseLogView", "Message id: {id}").format(id=entry.message_id))
    if entry.tokens:
        lines.append(translate("ResponseLogView", "Correlation token(s): {tokens}").format(
            tokens=", ".join(entry.tokens)))
    if entry.attempt_id is not None:
        if entry.attempts > 1:
            lines.append(translate("ResponseLogView", "History attempt #{id}, {n} tries").format(
                id=entry.attempt_id, n=entry.attempts))
        else:
            lines.append(translate("ResponseLogView", "History attempt #{id}").format(
                id=entry.attempt_id))
    lines.append("")
    lines.append(translate("ResponseLogView", "── Request ──"))
    request = entry.request
    if request is None:
        lines.append(translate("ResponseLogView", "(no request was made)") + f"  {entry.endpoint}")
    else:
        lines.append(f"{request.method} {request.url}")
        for name, value in request.headers:
            lines.append(f"{name}: {value}")
        lines.append("")
        if request.body_bytes:
            lines.append(_pretty(request.body_bytes.decode("utf-8", "replace")))
        else:
            lines.append(translate(
                "ResponseLogView", "(body no longer kept in memory: see the history)"))
    lines.append("")
    lines.append(translate("ResponseLogView", "── Response: HTTP {status} ──").format(
        status=status))
    if entry.errors:
        for field, message in entry.errors:
            lines.append(f"• {field}: {message}" if field else f"• {message}")
        lines.append("")
    lines.append(_pretty(entry.response_body) if entry.response_body
                 else translate("ResponseLogView", "(no body)"))
    return "\n".join(lines) + "\n"


class ResponseLogView(QWidget):
    """Filter box, log table and details pane."""

    #: Text for the status bar (e.g. "Copied").
    status_message = Signal(str)

    def __init__(self, model: ResponseLogModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "responseLog", self.tr("Response log"))
        self.model = model
        self.proxy = LogFilterModel(self)
        self.proxy.setSourceModel(model)
        self.filter = named(
            QLineEdit(), "logFilter", self.tr("Filter the response log"),
            with_shortcut(self.tr("Show only rows containing this text"), "Ctrl+Shift+F"),
        )
        self.filter.setPlaceholderText(self.tr("Filter: status, message id, recipient, token…"))
        self.filter.setClearButtonEnabled(True)
        self.count_label = named(QLabel(), "logCount", self.tr("Rows shown"))
        self.count_label.setProperty("role", "hint")
        self.table = named(
            QTableView(), "logTable", self.tr("Requests"),
            self.tr("One row per request, newest first"),
        )
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        self.table.setWordWrap(False)
        self.table.setTabKeyNavigation(False)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        widths = {
            "time": 70, "profile": 90, "endpoint": 220, "status": 56, "meaning": 300,
            "message_id": 250, "latency": 70, "recipients": 200,
        }
        for i, column in enumerate(COLUMNS):
            header.resizeSection(i, widths[column])
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)

        self.details = named(
            QPlainTextEdit(), "logDetails", self.tr("Request and response details"),
            self.tr("The request as sent (key masked) and the answer"),
        )
        self.details.setReadOnly(True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setPlaceholderText(self.tr("Select a row to see its request and response."))
        self.copy_curl = named(
            QPushButton(icon("copy"), self.tr("Copy as cURL")), "copyCurl",
            self.tr("Copy as cURL"),
            self.tr("Copy a curl command sending the same request (key masked)"),
        )
        self.copy_python = named(
            QPushButton(icon("copy"), self.tr("Copy as Python")), "copyPython",
            self.tr("Copy as Python"),
            self.tr("Copy a Python (httpx) script sending the same request (key masked)"),
        )
        self.clear_button = named(
            QPushButton(self.tr("Clear log")), "clearLog", self.tr("Clear the response log"),
            self.tr("Empty this table (the history keeps every send)"),
        )
        for button in (self.copy_curl, self.copy_python):
            button.setEnabled(False)

        top = QHBoxLayout()
        title = QLabel(self.tr("Response log"))
        title.setProperty("role", "paneTitle")
        top.addWidget(title)
        top.addWidget(self.filter, 1)
        top.addWidget(self.count_label)
        top.addWidget(self.clear_button)
        details_box = QWidget()
        details_layout = QVBoxLayout(details_box)
        details_layout.setContentsMargins(0, 0, 0, 0)
        details_layout.addWidget(self.details, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.copy_curl)
        buttons.addWidget(self.copy_python)
        buttons.addStretch(1)
        details_layout.addLayout(buttons)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("logSplitter")
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(details_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)

        self._select_timer = QTimer(self)
        self._select_timer.setSingleShot(True)
        self._select_timer.setInterval(SELECT_NEWEST_MS)
        self._select_timer.timeout.connect(self._on_select_due)
        self._select_pending = False
        # Rows arriving in a burst repaint the table at most once per interval (painting it
        # after every row is most of the window's work while a hundred sends finish).
        self._paint_timer = QTimer(self)
        self._paint_timer.setSingleShot(True)
        self._paint_timer.setInterval(SELECT_NEWEST_MS)
        self._paint_timer.timeout.connect(self._on_paint_due)
        model.rowsInserted.connect(self._on_rows_inserted)
        self.filter.textChanged.connect(self._on_filter)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.copy_curl.clicked.connect(self._copy_curl)
        self.copy_python.clicked.connect(self._copy_python)
        self.clear_button.clicked.connect(self._clear)
        model.rowsInserted.connect(self._update_count)
        model.rowsRemoved.connect(self._update_count)
        model.modelReset.connect(self._update_count)
        set_tab_order(
            self.filter, self.clear_button, self.table, self.details, self.copy_curl,
            self.copy_python,
        )
        self._update_count()

    def _on_filter(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_count()

    def _update_count(self, *_args: object) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        if total == shown:
            self.count_label.setText(self.tr("{n} request(s)").format(n=total))
        else:
            self.count_label.setText(self.tr("{shown} of {n}").format(shown=shown, n=total))

    def selected_entry(self) -> LogEntry | None:
        """The entry of the selected row, if any."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        entry = rows[0].data(ENTRY_ROLE)
        return entry if isinstance(entry, LogEntry) else None

    def select_newest(self) -> None:
        """Select the top row (after a send); in a burst of sends, the latest one shortly.

        Showing a row's details lays out its request and answer on this thread (several ms
        each); a hundred sends finishing within a second would otherwise stall the window.
        """
        if self._select_timer.isActive():
            self._select_pending = True
            return
        self._select_pending = False
        if self.proxy.rowCount():
            self.table.selectRow(0)
        self._select_timer.start()

    def _on_rows_inserted(self, *_args: object) -> None:
        if self._paint_timer.isActive():
            self.table.setUpdatesEnabled(False)
        else:
            self._paint_timer.start()

    def _on_paint_due(self) -> None:
        if not self.table.updatesEnabled():
            self.table.setUpdatesEnabled(True)  # one repaint with every row since
            self._paint_timer.start()

    def _on_select_due(self) -> None:
        if self._select_pending:
            self.select_newest()

    def _on_selection(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        entry = self.selected_entry()
        if entry is None:
            self.details.clear()
            self.copy_curl.setEnabled(False)
            self.copy_python.setEnabled(False)
            return
        self.details.setPlainText(describe_entry(entry))
        usable = entry.request is not None and bool(entry.request.body_bytes)
        self.copy_curl.setEnabled(usable)
        self.copy_python.setEnabled(usable)

    def _copy(self, python: bool) -> None:
        from netcore_desktop.core.client import to_curl, to_python

        entry = self.selected_entry()
        if entry is None or entry.request is None:
            return
        text = to_python(entry.request) if python else to_curl(entry.request)
        QGuiApplication.clipboard().setText(text)
        emit(self.status_message,
            self.tr("Copied as Python; the key is masked (****): put yours in before running.")
            if python
            else self.tr("Copied as cURL; the key is masked (****): put yours in before running.")
        )

    def _copy_curl(self) -> None:
        self._copy(False)

    def _copy_python(self) -> None:
        self._copy(True)

    def _clear(self) -> None:
        self.model.clear()
        self.details.clear()

    def index_of_newest(self) -> QModelIndex:
        """The proxy index of the newest visible row (invalid when empty)."""
        return self.proxy.index(0, 0)
