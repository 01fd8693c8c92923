"""The CSV import dialog: pick a recipient list, map its columns, see bad rows and duplicates.

The file is read in the worker thread (:mod:`netcore_desktop.core.csv_import`): a file that
cannot be used (empty, binary, another encoding, no address column) gets its clear message
here, with a button to read it in the suggested encoding when there is one. The mapping says
which column is the address, which the name and which become ``[%KEY%]`` attributes; every
change is checked again in the worker, and the bad rows (with line numbers and reasons) and
the addresses found more than once (with every line) are listed. "Create job" makes a bulk
job of the current draft with one row per recipient, to review and start in the bulk panel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from netcore_desktop.core.csv_import import (
    ColumnMapping,
    CsvImport,
    CsvImportError,
    CsvTable,
    attribute_key,
)
from netcore_desktop.core.message import Draft
from netcore_desktop.ui.common import named, set_tab_order, with_shortcut
from netcore_desktop.ui.qt_compat import emit
from netcore_desktop.ui.tasks import SupportContext, TaskRunner

log = logging.getLogger(__name__)

#: Bad rows and duplicates listed in the dialog (the summary counts them all).
MAX_LISTED = 1000

_ENCODING_NAMES = {"cp1252": "Windows-1252 (Latin-1)", "utf-16": "UTF-16"}


@dataclass(frozen=True)
class CsvRead:
    """A file read in the worker: its table and guessed mapping, or why it cannot be used."""

    path: str
    table: CsvTable | None
    mapping: ColumnMapping | None
    error: str = ""
    code: str = ""
    suggested_encoding: str | None = None


@dataclass(frozen=True)
class CsvMapped:
    """The rows of a table read with a mapping, or why the mapping does not work."""

    imported: CsvImport | None
    error: str = ""


def read_csv_task(_ctx: SupportContext, path: str, encoding: str | None) -> CsvRead:
    """Read and guess (in the worker)."""
    from netcore_desktop.core.csv_import import guess_mapping, read_table

    try:
        table = read_table(Path(path), encoding=encoding)
    except CsvImportError as exc:
        return CsvRead(path, None, None, str(exc), exc.code, exc.suggested_encoding)
    return CsvRead(path, table, guess_mapping(table))


def map_csv_task(_ctx: SupportContext, table: CsvTable, mapping: ColumnMapping) -> CsvMapped:
    """Apply a mapping (in the worker: every address is checked)."""
    from netcore_desktop.core.csv_import import apply_mapping

    try:
        return CsvMapped(apply_mapping(table, mapping))
    except CsvImportError as exc:
        return CsvMapped(None, str(exc))


def create_job_task(ctx: SupportContext, profile: str, template: Draft, imported: CsvImport,
                    skip_duplicates: bool, source: str, concurrency: int) -> int:
    """Make the bulk job (one row per recipient); returns its id."""
    from netcore_desktop.core.jobs import JobStore

    return JobStore(ctx.history()).create(
        profile, template, imported.recipients(skip_duplicates=skip_duplicates),
        source=source, concurrency=concurrency,
    )


class CsvImportDialog(QDialog):
    """Pick a CSV list, map its columns, review problems, create a bulk job."""

    #: A job was created (its id).
    job_created = Signal(int)
    #: A file was read (the :class:`CsvRead`), for tests.
    file_read = Signal(object)
    #: The rows were checked with the current mapping (the :class:`CsvMapped`).
    mapped = Signal(object)

    def __init__(self, tasks: TaskRunner, template: Draft, profile: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("csvImportDialog")
        self.setAccessibleName(self.tr("Import recipients from CSV"))
        self.setWindowTitle(self.tr("Import recipients from a CSV file"))
        self.tasks = tasks
        self.template = template
        self.profile = profile
        self._read: CsvRead | None = None
        self._imported: CsvImport | None = None
        self._name_choices: list[tuple[int, ...]] = []
        self._filling = False
        #: The job made by "Create job".
        self.job_id: int | None = None

        # --- file -----------------------------------------------------------------------------
        self.choose_button = named(
            QPushButton(self.tr("Choose file…")), "csvChooseFile", self.tr("Choose a CSV file"),
            with_shortcut(self.tr("Pick the CSV list of recipients"), "Ctrl+O"),
        )
        self.path_label = named(QLabel(self.tr("No file chosen.")), "csvPath",
                                self.tr("File chosen"))
        self.path_label.setWordWrap(True)
        self.file_info = named(QLabel(), "csvFileInfo", self.tr("What was read"))
        self.file_info.setProperty("role", "hint")
        self.error_label = named(QLabel(), "csvError", self.tr("Why the file cannot be used"))
        self.error_label.setProperty("role", "warningBar")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setVisible(False)
        self.encoding_button = named(
            QPushButton(), "csvReadAs", self.tr("Read the file in another encoding"),
            self.tr("Read the file in the encoding it most likely has"),
        )
        self.encoding_button.setVisible(False)

        # --- mapping --------------------------------------------------------------------------
        self.email_column = named(QComboBox(), "csvEmailColumn", self.tr("Address column"),
                                  self.tr("The column holding the email addresses"))
        self.name_column = named(QComboBox(), "csvNameColumn", self.tr("Name column"),
                                 self.tr("The column(s) holding the recipient's name"))
        self.attributes = named(QTableWidget(0, 3), "csvAttributes",
                                self.tr("Columns that become placeholders"),
                                self.tr("Tick the columns to use as [%KEY%] values; the key "
                                        "can be edited"))
        self.attributes.setHorizontalHeaderLabels(
            [self.tr("Use"), self.tr("Column"), self.tr("Placeholder key")]
        )
        self.attributes.verticalHeader().setVisible(False)
        self.attributes.horizontalHeader().setSectionResizeMode(
            2, QHeaderView.ResizeMode.Stretch
        )
        self.attributes.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.placeholder_label = named(QLabel(), "csvPlaceholders",
                                       self.tr("Placeholders of the message"))
        self.placeholder_label.setWordWrap(True)
        mapping_form = QFormLayout()
        mapping_form.addRow(self.tr("&Address column"), self.email_column)
        mapping_form.addRow(self.tr("&Name column"), self.name_column)

        # --- results --------------------------------------------------------------------------
        self.summary_label = named(QLabel(), "csvSummary", self.tr("Import summary"))
        self.summary_label.setWordWrap(True)
        self.problems = named(QTableWidget(0, 3), "csvBadRows", self.tr("Bad rows"),
                              self.tr("Rows left out, with their line number and reason"))
        self.problems.setHorizontalHeaderLabels(
            [self.tr("Line"), self.tr("Address"), self.tr("Reason")]
        )
        self.duplicates = named(QTableWidget(0, 2), "csvDuplicates",
                                self.tr("Duplicate addresses"),
                                self.tr("Addresses found on more than one line"))
        self.duplicates.setHorizontalHeaderLabels([self.tr("Address"), self.tr("Lines")])
        for table in (self.problems, self.duplicates):
            table.verticalHeader().setVisible(False)
            table.horizontalHeader().setStretchLastSection(True)
            table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.result_tabs = named(QTabWidget(), "csvResultTabs", self.tr("Problems found"))
        self.result_tabs.addTab(self.problems, self.tr("Bad rows"))
        self.result_tabs.addTab(self.duplicates, self.tr("Duplicates"))
        self.skip_duplicates = named(
            QCheckBox(self.tr("Send only once to each address (leave out later repeats)")),
            "csvSkipDuplicates", self.tr("Leave out repeated addresses"),
            self.tr("When an address is on several lines, only its first line is sent"),
        )
        self.skip_duplicates.setChecked(True)
        self.concurrency = named(QSpinBox(), "csvConcurrency", self.tr("Rows sent at once"),
                                 self.tr("How many rows the job sends at the same time"))
        self.concurrency.setRange(1, 16)
        self.concurrency.setValue(4)

        self.buttons = QDialogButtonBox()
        self.create_button = self.buttons.addButton(
            self.tr("Create job…"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        named(self.create_button, "csvCreateJob", self.tr("Create the bulk job"),
              with_shortcut(self.tr("Make a bulk job of the draft, one row per recipient, "
                                    "to review and start"), "Ctrl+Return"))
        self.create_button.setEnabled(False)
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        named(cancel, "csvCancel", self.tr("Cancel"), with_shortcut(self.tr("Close"), "Esc"))

        # --- layout ---------------------------------------------------------------------------
        file_row = QHBoxLayout()
        file_row.addWidget(self.choose_button)
        file_row.addWidget(self.path_label, 1)
        error_row = QHBoxLayout()
        error_row.addWidget(self.error_label, 1)
        error_row.addWidget(self.encoding_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(mapping_form)
        left_layout.addWidget(QLabel(self.tr("Columns that become placeholders:")))
        left_layout.addWidget(self.attributes, 1)
        left_layout.addWidget(self.placeholder_label)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.summary_label)
        right_layout.addWidget(self.result_tabs, 1)
        right_layout.addWidget(self.skip_duplicates)
        middle = QHBoxLayout()
        middle.addWidget(left, 1)
        middle.addWidget(right, 1)
        bottom = QHBoxLayout()
        concurrency_label = QLabel(self.tr("Rows sent at &once"))
        concurrency_label.setBuddy(self.concurrency)
        bottom.addWidget(concurrency_label)
        bottom.addWidget(self.concurrency)
        bottom.addStretch(1)
        bottom.addWidget(self.buttons)
        layout = QVBoxLayout(self)
        layout.addLayout(file_row)
        layout.addWidget(self.file_info)
        layout.addLayout(error_row)
        layout.addLayout(middle, 1)
        layout.addLayout(bottom)
        self.resize(980, 620)

        # --- behaviour ------------------------------------------------------------------------
        self._remap = QTimer(self)
        self._remap.setSingleShot(True)
        self._remap.setInterval(150)
        self._remap.timeout.connect(self._apply_mapping)
        self.choose_button.clicked.connect(self.choose_file)
        self.encoding_button.clicked.connect(self._read_suggested)
        self.email_column.currentIndexChanged.connect(self._schedule)
        self.name_column.currentIndexChanged.connect(self._schedule)
        self.attributes.itemChanged.connect(self._schedule)
        self.skip_duplicates.toggled.connect(self._show_summary)
        self.create_button.clicked.connect(self._create)
        cancel.clicked.connect(self.reject)
        QShortcut(QKeySequence("Ctrl+O"), self).activated.connect(self.choose_file)
        QShortcut(QKeySequence("Ctrl+Return"), self).activated.connect(self.create_button.click)
        set_tab_order(
            self.choose_button, self.encoding_button, self.email_column, self.name_column,
            self.attributes, self.result_tabs, self.skip_duplicates, self.concurrency,
            self.create_button, cancel,
        )

    # --- reading ------------------------------------------------------------------------------

    def choose_file(self) -> None:
        """Ask for a file and read it."""
        path, _ = QFileDialog.getOpenFileName(
            self, self.tr("Choose the recipient list"), "",
            self.tr("CSV files (*.csv *.txt *.tsv);;All files (*)"),
        )
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path, encoding: str | None = None) -> None:
        """Read ``path`` (in the worker) and show what it holds."""
        self.path_label.setText(str(path))
        self.file_info.setText(self.tr("Reading…"))
        self.create_button.setEnabled(False)
        self.tasks.submit(read_csv_task, str(path), encoding, on_done=self._on_read,
                          on_error=self._on_failed, latest="csv-read")

    def _read_suggested(self) -> None:
        read = self._read
        if read is not None and read.suggested_encoding:
            self.open_file(read.path, read.suggested_encoding)

    def _on_read(self, read: CsvRead) -> None:
        self._read = read
        self._imported = None
        if read.table is None:
            self.file_info.setText("")
            self._show_error(read.error)
            if read.suggested_encoding:
                name = _ENCODING_NAMES.get(read.suggested_encoding, read.suggested_encoding)
                self.encoding_button.setText(self.tr("Read it as {name}").format(name=name))
                self.encoding_button.setVisible(True)
            self._fill_mapping(None, None)
            self.summary_label.setText("")
            self._fill_problems(None)
            emit(self.file_read, read)
            return
        table = read.table
        self.encoding_button.setVisible(False)
        self._show_error("")
        header = self.tr("no header row (columns numbered)") if table.headerless else \
            self.tr("{n} columns").format(n=len(table.header))
        self.file_info.setText(self.tr("{rows} data rows · {header} · {delimiter}-separated · "
                                       "{encoding}").format(
            rows=len(table.rows), header=header, delimiter=table.delimiter_name,
            encoding=table.encoding))
        self._fill_mapping(table, read.mapping)
        emit(self.file_read, read)
        self._apply_mapping()

    def _on_failed(self, message: str) -> None:
        self._show_error(message)

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    # --- mapping ------------------------------------------------------------------------------

    def _fill_mapping(self, table: CsvTable | None, mapping: ColumnMapping | None) -> None:
        self._filling = True
        try:
            self.email_column.clear()
            self.name_column.clear()
            self.attributes.setRowCount(0)
            self._name_choices = []
            if table is None or mapping is None:
                return
            self.email_column.addItem(self.tr("(choose the address column)"), -1)
            for i, name in enumerate(table.header):
                self.email_column.addItem(name, i)
            self.email_column.setCurrentIndex(
                self.email_column.findData(mapping.email if mapping.email is not None else -1)
            )
            self._name_choices = [()]
            self.name_column.addItem(self.tr("(no name)"))
            if len(mapping.name) > 1:
                self._name_choices.append(mapping.name)
                self.name_column.addItem(" + ".join(table.header[i] for i in mapping.name))
            for i, name in enumerate(table.header):
                self._name_choices.append((i,))
                self.name_column.addItem(name)
            self.name_column.setCurrentIndex(self._name_choices.index(mapping.name)
                                             if mapping.name in self._name_choices else 0)
            self.attributes.setRowCount(len(table.header))
            for i, name in enumerate(table.header):
                use = QTableWidgetItem()
                use.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
                use.setCheckState(Qt.CheckState.Checked if i in mapping.attributes
                                  else Qt.CheckState.Unchecked)
                use.setData(Qt.ItemDataRole.UserRole, i)
                column = QTableWidgetItem(name)
                column.setFlags(Qt.ItemFlag.ItemIsEnabled)
                key = QTableWidgetItem(mapping.attributes.get(i, attribute_key(name)))
                self.attributes.setItem(i, 0, use)
                self.attributes.setItem(i, 1, column)
                self.attributes.setItem(i, 2, key)
            self.attributes.resizeColumnsToContents()
        finally:
            self._filling = False

    def mapping(self) -> ColumnMapping | None:
        """The mapping the controls show now."""
        if self._read is None or self._read.table is None:
            return None
        email = self.email_column.currentData()
        email_index = email if isinstance(email, int) and email >= 0 else None
        name_index = self.name_column.currentIndex()
        name = self._name_choices[name_index] if 0 <= name_index < len(
            self._name_choices) else ()
        attributes: dict[int, str] = {}
        for row in range(self.attributes.rowCount()):
            use = self.attributes.item(row, 0)
            key = self.attributes.item(row, 2)
            if use is None or key is None or row == email_index:
                continue
            if use.checkState() == Qt.CheckState.Checked:
                attributes[row] = key.text().strip()
        return ColumnMapping(email=email_index, name=name, attributes=attributes)

    def _schedule(self, *_args: object) -> None:
        if not self._filling:
            self._remap.start()

    def _apply_mapping(self) -> None:
        read, mapping = self._read, self.mapping()
        if read is None or read.table is None or mapping is None:
            return
        # The address column is never also a placeholder row: grey it out.
        self._filling = True
        for row in range(self.attributes.rowCount()):
            item = self.attributes.item(row, 1)
            if item is not None:
                item.setForeground(QBrush(QColor("#8c959f" if row == mapping.email else
                                                 "#1f2328")))
        self._filling = False
        self.tasks.submit(map_csv_task, read.table, mapping, on_done=self._on_mapped,
                          on_error=self._on_failed, latest="csv-map")

    def _on_mapped(self, mapped: CsvMapped) -> None:
        self._imported = mapped.imported
        self._show_error(mapped.error)
        self._fill_problems(mapped.imported)
        self._show_summary()
        emit(self.mapped, mapped)

    def _fill_problems(self, imported: CsvImport | None) -> None:
        problems = imported.problems if imported is not None else ()
        duplicates = imported.duplicates if imported is not None else ()
        self.problems.setRowCount(min(len(problems), MAX_LISTED))
        for row, problem in enumerate(problems[:MAX_LISTED]):
            for column, text in enumerate((str(problem.line), problem.email, problem.message)):
                self.problems.setItem(row, column, QTableWidgetItem(text))
        self.duplicates.setRowCount(min(len(duplicates), MAX_LISTED))
        for row, dup in enumerate(duplicates[:MAX_LISTED]):
            lines = ", ".join(str(n) for n in dup.lines)
            self.duplicates.setItem(row, 0, QTableWidgetItem(dup.email))
            self.duplicates.setItem(row, 1, QTableWidgetItem(lines))
        self.result_tabs.setTabText(0, self.tr("Bad rows ({n})").format(n=len(problems)))
        self.result_tabs.setTabText(1, self.tr("Duplicates ({n})").format(n=len(duplicates)))
        if problems:
            self.result_tabs.setCurrentIndex(0)
        elif duplicates:
            self.result_tabs.setCurrentIndex(1)

    def _show_summary(self, *_args: object) -> None:
        imported = self._imported
        if imported is None:
            self.summary_label.setText("")
            self.placeholder_label.setText("")
            self.create_button.setEnabled(False)
            return
        recipients = imported.recipients(skip_duplicates=self.skip_duplicates.isChecked())
        from netcore_desktop.core.jobs import NewRow, row_credits
        from netcore_desktop.ui.bulk_job import also_to

        summary = self.tr("{summary} {n} row(s) will be in the job.").format(
            summary=imported.summary(), n=len(recipients))
        also = also_to(self.template)
        if also:
            # The draft's Cc and Bcc go with every row's message and cost credits too.
            credits = row_credits(self.template, (NewRow(r.email) for r in recipients))
            summary += " " + self.tr(
                "Every message also goes to {also}: {credits} credit(s) in all.").format(
                also=also, credits=credits)
        self.summary_label.setText(summary)
        from netcore_desktop.core.render import find_placeholders

        used = find_placeholders(self.template.subject, self.template.body, self.template.amp)
        keys = set(imported.attribute_keys)
        missing = [k for k in used if k not in keys]
        if missing:
            self.placeholder_label.setText(self.tr(
                "⚠ The message uses {keys}, which no column gives: every row would be "
                "flagged. Rename a column's key to match, or change the message.").format(
                keys=", ".join(f"[%{k}%]" for k in missing)))
            self.placeholder_label.setProperty("role", "warningBar")
        elif used:
            self.placeholder_label.setText(self.tr("The message's placeholders {keys} all "
                                                   "have a column.").format(
                keys=", ".join(f"[%{k}%]" for k in used)))
            self.placeholder_label.setProperty("role", "hint")
        else:
            self.placeholder_label.setText(self.tr("The message has no [%KEY%] placeholders."))
            self.placeholder_label.setProperty("role", "hint")
        self.placeholder_label.style().unpolish(self.placeholder_label)
        self.placeholder_label.style().polish(self.placeholder_label)
        self.create_button.setEnabled(bool(recipients))

    @property
    def imported(self) -> CsvImport | None:
        """The rows as checked with the current mapping."""
        return self._imported

    # --- creating -----------------------------------------------------------------------------

    def _create(self) -> None:
        imported, read = self._imported, self._read
        if imported is None or read is None:
            return
        self.create_button.setEnabled(False)
        self.tasks.submit(
            create_job_task, self.profile, self.template, imported,
            self.skip_duplicates.isChecked(), Path(read.path).name, self.concurrency.value(),
            on_done=self._on_created, on_error=self._on_create_failed,
        )

    def _on_created(self, job_id: Any) -> None:
        self.job_id = int(job_id)
        emit(self.job_created, self.job_id)
        self.accept()

    def _on_create_failed(self, message: str) -> None:
        self.create_button.setEnabled(True)
        self._show_error(message)
