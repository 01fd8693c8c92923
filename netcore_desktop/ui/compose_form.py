"""The compose form on the left of the window: it lays out fields and forwards edits.

All behaviour lives in :class:`~netcore_desktop.ui.compose_controller.ComposeController`; the
form turns widget signals into controller calls, shows inline problems under the address
fields, and reloads every widget when a whole draft is loaded. :meth:`ComposeForm.focus_field`
is what the checks list calls to jump to the field a problem names.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from PySide6.QtCore import QDateTime, QMimeData, QSize, Qt, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QFontDatabase,
    QIntValidator,
    QKeySequence,
    QShortcut,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from netcore_desktop.core.message import Address, BodyFormat, Draft
from netcore_desktop.ui.addresses import ParsedAddress, format_address_list, parse_address_list
from netcore_desktop.ui.common import (
    human_size,
    icon,
    named,
    repolish,
    set_tab_order,
    with_shortcut,
)
from netcore_desktop.ui.compose_controller import TRACKING_KEYS, ComposeController
from netcore_desktop.ui.qt_compat import emit
from netcore_desktop.ui.recipients_model import EMAIL_COLUMN, RecipientsModel

log = logging.getLogger(__name__)


def _local_files(mime: QMimeData) -> list[Path]:
    if not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


class AddressEdit(QPlainTextEdit):
    """A one-to-four line field for pasted address lists; invalid items are underlined."""

    #: The person changed the text (not emitted for programmatic changes).
    edited = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._quiet = False
        self._lines = 1
        self.textChanged.connect(self._on_text_changed)
        self._fit()

    def _line_height(self) -> int:
        return self.fontMetrics().lineSpacing()

    def _fit(self) -> None:
        lines = min(4, max(1, int(self.document().size().height())))
        margins = self.contentsMargins()
        doc_margin = int(self.document().documentMargin())
        height = lines * self._line_height() + 2 * doc_margin + margins.top() + margins.bottom()
        self.setFixedHeight(height + 2)

    def sizeHint(self) -> QSize:
        """As tall as its text (one to four lines)."""
        return QSize(240, self.height())

    def _on_text_changed(self) -> None:
        self._fit()
        if not self._quiet:
            emit(self.edited, self.toPlainText())

    def set_text_quietly(self, text: str) -> None:
        """Set the text without emitting :attr:`edited`."""
        if text == self.toPlainText():
            return
        self._quiet = True
        try:
            self.setPlainText(text)
        finally:
            self._quiet = False

    def mark(self, parsed: list[ParsedAddress]) -> None:
        """Underline the items that are not usable addresses."""
        selections: list[QTextEdit.ExtraSelection] = []
        fmt = QTextCharFormat()
        fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        fmt.setUnderlineColor(QColor("#d1242f"))
        length = len(self.toPlainText())
        for item in parsed:
            if item.problem is None or item.end > length:
                continue
            sel = QTextEdit.ExtraSelection()
            cursor = QTextCursor(self.document())
            cursor.setPosition(item.start)
            cursor.setPosition(item.end, QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = cursor
            sel.format = fmt
            selections.append(sel)
        self.setExtraSelections(selections)

    def select_span(self, start: int, end: int) -> None:
        """Select characters ``start``..``end`` (to show which item a problem is about)."""
        cursor = self.textCursor()
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)

    def insertFromMimeData(self, source: QMimeData) -> None:
        """Paste plain text only (lists copied from spreadsheets or mail clients)."""
        self.insertPlainText(source.text())


class BodyEdit(QPlainTextEdit):
    """The body editor; dropped files become attachments instead of pasted paths."""

    #: Local files were dropped on the editor.
    files_dropped = Signal(list)

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        """Accept files (as attachments) as well as text."""
        return bool(_local_files(source)) or super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        """Files become attachments; text is pasted as plain text."""
        files = _local_files(source)
        if files:
            emit(self.files_dropped, files)
            return
        self.insertPlainText(source.text())


class AttachmentList(QListWidget):
    """The attachments list; files dropped on it are attached."""

    files_dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept local files."""
        if _local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:  # type: ignore[override]
        """Keep accepting local files while they move over the list."""
        if _local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        """Attach the dropped files."""
        files = _local_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            emit(self.files_dropped, files)
        else:
            super().dropEvent(event)


class ComposeForm(QWidget):
    """Every field of a draft, laid out top to bottom; edits go to the controller."""

    #: A message for the status bar (e.g. a file that could not be attached).
    status_message = Signal(str)

    TAB_RECIPIENTS = 0
    TAB_ATTACHMENTS = 1
    TAB_OPTIONS = 2
    TAB_AMP = 3

    def __init__(self, controller: ComposeController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "composeForm", self.tr("Compose"))
        self.setAcceptDrops(True)
        self._controller = controller
        self._loading = False
        self._live = False
        self._shown_attachments: tuple[object, ...] | None = None
        self._shown_keys: list[str] | None = None
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        # --- header fields -----------------------------------------------------------------
        self.sender_email = named(
            QLineEdit(), "senderEmail", self.tr("From address"),
            self.tr("The sender address; its domain must be verified on the account"),
        )
        self.sender_email.setPlaceholderText(self.tr("sender@your-domain.com"))
        self.sender_name = named(
            QLineEdit(), "senderName", self.tr("From name"), self.tr("The sender's display name")
        )
        self.sender_name.setPlaceholderText(self.tr("Display name"))
        self.to_edit = named(
            AddressEdit(), "toField", self.tr("To"),
            self.tr("Paste one or many addresses; each becomes a test recipient row"),
        )
        self.to_edit.setPlaceholderText(self.tr("name@example.com, Name <other@example.com>"))
        self.cc_edit = named(
            AddressEdit(), "ccField", self.tr("Cc"), self.tr("Copied on every recipient's message")
        )
        self.bcc_edit = named(
            AddressEdit(), "bccField", self.tr("Bcc"),
            self.tr("Blind copies, added to every recipient's message"),
        )
        self.reply_to = named(
            QLineEdit(), "replyToField", self.tr("Reply-to"),
            self.tr("Where replies go (leave empty for the From address)"),
        )
        self.subject = named(
            QLineEdit(), "subjectField", self.tr("Subject"),
            self.tr("The subject line; [%KEY%] placeholders are filled per recipient"),
        )
        self.problem_labels: dict[str, QLabel] = {}
        for field in ("to", "cc", "bcc"):
            label = named(QLabel(), f"{field}Problems", self.tr("Address problems"))
            label.setProperty("role", "fieldProblem")
            label.setWordWrap(True)
            label.setVisible(False)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.problem_labels[field] = label

        header = QFormLayout()
        header.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        header.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        header.setVerticalSpacing(6)
        sender_row = QHBoxLayout()
        sender_row.addWidget(self.sender_email, 3)
        sender_row.addWidget(self.sender_name, 2)
        self._add_row(header, self.tr("Fro&m"), sender_row, self.sender_email)
        for field, edit, text in (
            ("to", self.to_edit, self.tr("&To")),
            ("cc", self.cc_edit, self.tr("&Cc")),
            ("bcc", self.bcc_edit, self.tr("&Bcc")),
        ):
            box = QVBoxLayout()
            box.setSpacing(2)
            box.addWidget(edit)
            box.addWidget(self.problem_labels[field])
            self._add_row(header, text, box, edit)
        self._add_row(header, self.tr("Reply-t&o"), self.reply_to, self.reply_to)
        self._add_row(header, self.tr("S&ubject"), self.subject, self.subject)

        # --- body ----------------------------------------------------------------------------
        self.body_format = named(
            QComboBox(), "bodyFormat", self.tr("Body format"),
            self.tr("Write the body in Markdown (converted to email-safe HTML) or raw HTML"),
        )
        self.body_format.addItem(self.tr("Markdown"), BodyFormat.MARKDOWN)
        self.body_format.addItem(self.tr("HTML"), BodyFormat.HTML)
        self.body = named(
            BodyEdit(), "bodyEditor", self.tr("Body"),
            self.tr("The message body; drop files here to attach them"),
        )
        self.body.setFont(mono)
        self.body.setTabChangesFocus(True)
        self.body.setPlaceholderText(self.tr("Hi [%FIRST_NAME%], …"))
        body_label = QLabel(self.tr("Bo&dy"))
        body_label.setBuddy(self.body)
        body_bar = QHBoxLayout()
        body_bar.addWidget(body_label)
        body_bar.addStretch(1)
        fmt_label = QLabel(self.tr("Format:"))
        fmt_label.setBuddy(self.body_format)
        body_bar.addWidget(fmt_label)
        body_bar.addWidget(self.body_format)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(header)
        top_layout.addLayout(body_bar)
        top_layout.addWidget(self.body, 1)

        # --- bottom tabs ---------------------------------------------------------------------
        self.tabs = named(QTabWidget(), "composeTabs", self.tr("Recipients, attachments, options"))
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self._build_recipients_tab(), self.tr("Test &recipients"))
        self.tabs.addTab(self._build_attachments_tab(), self.tr("&Attachments"))
        self.tabs.addTab(self._build_options_tab(), self.tr("O&ptions"))
        self.tabs.addTab(self._build_amp_tab(), self.tr("AMP (optiona&l)"))

        self.splitter = named(QSplitter(Qt.Orientation.Vertical), "composeSplitter",
                              self.tr("Compose layout"))
        self.splitter.addWidget(top)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([560, 200])
        self.splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 4)
        layout.addWidget(self.splitter)

        self._connect()
        self._set_tab_order()
        self._reload(controller.draft)

    # --- building ------------------------------------------------------------------------------

    @staticmethod
    def _add_row(form: QFormLayout, text: str, field: object, buddy: QWidget) -> None:
        label = QLabel(text)
        label.setBuddy(buddy)
        form.addRow(label, field)  # type: ignore[call-overload]

    def _build_recipients_tab(self) -> QWidget:
        page = QWidget()
        self.recipients_model = RecipientsModel(self._controller, self)
        self.recipients_table = named(
            QTableView(), "recipientsTable", self.tr("Test recipients"),
            self.tr("One row per recipient; a column per [%KEY%] placeholder"),
        )
        self.recipients_table.setModel(self.recipients_model)
        self.recipients_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.recipients_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.recipients_table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.Interactive
        )
        self.recipients_table.horizontalHeader().setStretchLastSection(True)
        self.recipients_table.horizontalHeader().setDefaultSectionSize(130)
        self.recipients_table.verticalHeader().setDefaultSectionSize(
            self.fontMetrics().height() + 10
        )
        self.recipients_table.setTabKeyNavigation(False)
        self.recipients_table.setMinimumHeight(72)
        self.recipients_model.modelReset.connect(self._fit_recipient_columns)
        self.add_row_button = named(
            QPushButton(icon("add"), self.tr("Add recipient")), "addRecipient",
            self.tr("Add recipient"), self.tr("Add an empty test recipient row"),
        )
        self.remove_row_button = named(
            QPushButton(icon("remove"), self.tr("Remove")), "removeRecipient",
            self.tr("Remove recipient"), self.tr("Remove the selected recipient row"),
        )
        self.recipients_hint = named(QLabel(), "recipientsHint", self.tr("Recipients summary"))
        self.recipients_hint.setProperty("role", "hint")
        self.recipients_hint.setWordWrap(True)
        self.recipients_hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_row_button)
        buttons.addWidget(self.remove_row_button)
        buttons.addWidget(self.recipients_hint, 1)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(4, 6, 4, 4)
        layout.addWidget(self.recipients_table, 1)
        layout.addLayout(buttons)
        return page

    def _build_attachments_tab(self) -> QWidget:
        page = QWidget()
        self.attachments = named(
            AttachmentList(), "attachmentsList", self.tr("Attachments"),
            self.tr("Files attached to every recipient's message; drop files here"),
        )
        self.attachments.setMinimumHeight(60)
        self.attach_button = named(
            QPushButton(icon("attach"), self.tr("Attach files…")), "attachButton",
            self.tr("Attach files"), with_shortcut(self.tr("Attach files"), "Ctrl+Shift+A"),
        )
        self.remove_attachment_button = named(
            QPushButton(icon("remove"), self.tr("Remove")), "removeAttachment",
            self.tr("Remove attachment"), self.tr("Remove the selected attachment"),
        )
        self.attachments_total = named(QLabel(), "attachmentsTotal", self.tr("Attachments total"))
        self.attachments_total.setProperty("role", "hint")
        self.attachments_total.setWordWrap(True)
        self.attachments_total.setSizePolicy(
            QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
        )
        buttons = QHBoxLayout()
        buttons.addWidget(self.attach_button)
        buttons.addWidget(self.remove_attachment_button)
        buttons.addWidget(self.attachments_total, 1)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(4, 6, 4, 4)
        layout.addWidget(self.attachments, 1)
        layout.addLayout(buttons)
        return page

    def _build_options_tab(self) -> QWidget:
        page = QWidget()
        self.tags = named(
            QLineEdit(), "tagsField", self.tr("Tags"),
            self.tr("Reporting labels, comma separated; they come back in delivery events"),
        )
        self.tags.setPlaceholderText(self.tr("welcome, onboarding"))
        self.tracking: dict[str, QCheckBox] = {}
        labels = {
            "open_track": self.tr("Track opens"),
            "click_track": self.tr("Track clicks"),
            "unsubscribe_track": self.tr("Track unsubscribes"),
            "footer": self.tr("Add the account footer"),
        }
        names = {
            "open_track": "trackOpens",
            "click_track": "trackClicks",
            "unsubscribe_track": "trackUnsubscribes",
            "footer": "addFooter",
        }
        tracking_box = QGridLayout()
        for i, key in enumerate(TRACKING_KEYS):
            box = named(
                QCheckBox(labels[key]), names[key], labels[key],
                self.tr("Checked: on · empty: off · partly checked: the account's default"),
            )
            box.setTristate(True)
            self.tracking[key] = box
            tracking_box.addWidget(box, i // 2, i % 2)
        self.ippool = named(
            QLineEdit(), "ipPoolField", self.tr("IP pool"),
            self.tr("A dedicated IP pool name (leave empty for the default)"),
        )
        self.priority = named(
            QComboBox(), "priorityField", self.tr("Priority"),
            self.tr("Delivery priority (v6 API only)"),
        )
        self.priority.addItem(self.tr("Not set"), None)
        self.priority.addItem(self.tr("1 · Transactional / OTP"), 1)
        self.priority.addItem(self.tr("2 · Triggered"), 2)
        self.priority.addItem(self.tr("3 · Promotional"), 3)
        self.schedule_enabled = named(
            QCheckBox(self.tr("Send later at")), "scheduleEnabled", self.tr("Send later"),
            self.tr("Deliver at a chosen time instead of now"),
        )
        self.schedule = named(
            QDateTimeEdit(), "scheduleField", self.tr("Scheduled time"),
            self.tr("Delivery time, in this computer's time zone"),
        )
        self.schedule.setCalendarPopup(True)
        self.schedule.setDisplayFormat("yyyy-MM-dd HH:mm")
        # The editor's default is this computer's local time, which is what is meant; asking
        # Qt for the system time zone object instead costs ~4 ms of start-up.
        self.schedule.setEnabled(False)
        utc_offset = datetime.now().astimezone().utcoffset()
        offset = int(utc_offset.total_seconds()) // 60 if utc_offset is not None else 0
        sign = "+" if offset >= 0 else "-"
        self.schedule_zone = QLabel(
            self.tr("local time (UTC{offset})").format(
                offset=f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
            )
        )
        self.schedule_zone.setProperty("role", "hint")
        schedule_row = QHBoxLayout()
        schedule_row.addWidget(self.schedule_enabled)
        schedule_row.addWidget(self.schedule, 1)
        schedule_row.addWidget(self.schedule_zone)
        self.template_id = named(
            QLineEdit(), "templateIdField", self.tr("Template id"),
            self.tr("Send a template stored on the account instead of (or with) the body"),
        )
        self.template_id.setValidator(QIntValidator(1, 2_147_483_647, self))
        self.template_id.setPlaceholderText(self.tr("none"))

        form = QFormLayout(page)
        form.setContentsMargins(8, 8, 8, 8)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._add_row(form, self.tr("Ta&gs"), self.tags, self.tags)
        tracking_label = QLabel(self.tr("Tracking"))
        form.addRow(tracking_label, tracking_box)
        self._add_row(form, self.tr("IP pool"), self.ippool, self.ippool)
        self._add_row(form, self.tr("Priorit&y"), self.priority, self.priority)
        self._add_row(form, self.tr("Schedule"), schedule_row, self.schedule_enabled)
        self._add_row(form, self.tr("Template &id"), self.template_id, self.template_id)
        # Scrollable, so the options never force the body editor to shrink.
        scroll = QScrollArea()
        scroll.setObjectName("optionsScroll")
        scroll.setAccessibleName(self.tr("Options"))
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(page)
        return scroll

    def _build_amp_tab(self) -> QWidget:
        page = QWidget()
        hint = QLabel(
            self.tr(
                "An AMP for Email part is shown by clients that support it (Gmail, Yahoo); "
                "all others show the HTML body. Leave empty for none."
            )
        )
        hint.setWordWrap(True)
        hint.setProperty("role", "hint")
        self.amp = named(
            QPlainTextEdit(), "ampEditor", self.tr("AMP part"),
            self.tr("AMP HTML starting with <html ⚡4email>"),
        )
        self.amp.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.amp.setTabChangesFocus(True)
        self.amp.setPlaceholderText("<!doctype html>\n<html ⚡4email> …")
        layout = QVBoxLayout(page)
        layout.setContentsMargins(4, 6, 4, 4)
        layout.addWidget(hint)
        layout.addWidget(self.amp, 1)
        return page

    def _connect(self) -> None:
        c = self._controller
        self.sender_email.textEdited.connect(c.set_sender_email)
        self.sender_name.textEdited.connect(c.set_sender_name)
        self.to_edit.edited.connect(c.set_to_text)
        self.cc_edit.edited.connect(c.set_cc_text)
        self.bcc_edit.edited.connect(c.set_bcc_text)
        self.reply_to.textEdited.connect(c.set_reply_to)
        self.subject.textEdited.connect(c.set_subject)
        self.body.textChanged.connect(self._on_body_changed)
        self.body.files_dropped.connect(self._attach_paths)
        self.body_format.currentIndexChanged.connect(self._on_format_changed)
        self.amp.textChanged.connect(self._on_amp_changed)
        self.attachments.files_dropped.connect(self._attach_paths)
        self.attach_button.clicked.connect(self.choose_attachments)
        self.remove_attachment_button.clicked.connect(self._remove_attachment)
        self.add_row_button.clicked.connect(self._add_row_clicked)
        self.remove_row_button.clicked.connect(self._remove_row_clicked)
        self.recipients_table.selectionModel().currentRowChanged.connect(self._on_row_selected)
        self.tags.textEdited.connect(c.set_tags_text)
        for key, box in self.tracking.items():
            box.stateChanged.connect(self._on_tracking_changed)
            box.setProperty("trackingKey", key)
        self.ippool.textEdited.connect(c.set_ippool)
        self.priority.currentIndexChanged.connect(self._on_priority_changed)
        self.schedule_enabled.toggled.connect(self._on_schedule_changed)
        self.schedule.dateTimeChanged.connect(self._on_schedule_changed)
        self.template_id.textEdited.connect(self._on_template_changed)
        c.draft_replaced.connect(self._reload)
        c.draft_changed.connect(self._on_draft_changed)
        c.addresses_parsed.connect(self._show_address_problems)
        shortcut = QShortcut(QKeySequence("Ctrl+Shift+A"), self)
        shortcut.activated.connect(self.choose_attachments)

    def _set_tab_order(self) -> None:
        set_tab_order(
            self.sender_email, self.sender_name, self.to_edit, self.cc_edit, self.bcc_edit,
            self.reply_to, self.subject, self.body_format, self.body, self.tabs,
            self.recipients_table, self.add_row_button, self.remove_row_button,
            self.attachments, self.attach_button, self.remove_attachment_button,
            self.tags, *self.tracking.values(), self.ippool, self.priority,
            self.schedule_enabled, self.schedule, self.template_id, self.amp,
        )

    # --- edits -> controller -------------------------------------------------------------------

    def _on_body_changed(self) -> None:
        if not self._loading:
            self._controller.set_body(self.body.toPlainText())

    def _on_amp_changed(self) -> None:
        if not self._loading:
            self._controller.set_amp(self.amp.toPlainText())

    def _on_format_changed(self, _index: int) -> None:
        if not self._loading:
            self._controller.set_body_format(BodyFormat(self.body_format.currentData()))

    def _on_tracking_changed(self, _state: int) -> None:
        if self._loading:
            return
        for key, box in self.tracking.items():
            state = box.checkState()
            value = None if state == Qt.CheckState.PartiallyChecked else (
                state == Qt.CheckState.Checked
            )
            if getattr(self._controller.draft.settings, key) != value:
                self._controller.set_tracking(key, value)

    def _on_priority_changed(self, _index: int) -> None:
        if not self._loading:
            data = self.priority.currentData()
            self._controller.set_priority(None if data is None else int(data))

    def _on_schedule_changed(self, *_args: object) -> None:
        self.schedule.setEnabled(self.schedule_enabled.isChecked())
        if self._loading:
            return
        if self.schedule_enabled.isChecked():
            self._controller.set_schedule(int(self.schedule.dateTime().toSecsSinceEpoch()))
        else:
            self._controller.set_schedule(0)

    def _on_template_changed(self, text: str) -> None:
        self._controller.set_template_id(int(text) if text.strip().isdigit() else None)

    def choose_attachments(self) -> None:
        """Ask for files to attach."""
        files, _ = QFileDialog.getOpenFileNames(self, self.tr("Attach files"))
        if files:
            self._attach_paths([Path(f) for f in files])

    def _attach_paths(self, paths: list[Path]) -> None:
        errors = self._controller.add_attachment_files(paths)
        self.tabs.setCurrentIndex(self.TAB_ATTACHMENTS)
        if errors:
            emit(self.status_message, " ".join(errors))

    def _remove_attachment(self) -> None:
        row = self.attachments.currentRow()
        if row >= 0:
            self._controller.remove_attachment(row)

    def _fit_recipient_columns(self) -> None:
        table = self.recipients_table
        table.resizeColumnsToContents()
        for column in range(self.recipients_model.columnCount()):
            width = table.columnWidth(column)
            table.setColumnWidth(column, max(90, min(width + 12, 260)))

    def _add_row_clicked(self) -> None:
        row = self._controller.add_envelope()
        index = self.recipients_model.index(row, EMAIL_COLUMN)
        self.recipients_table.setCurrentIndex(index)
        self.recipients_table.edit(index)

    def _remove_row_clicked(self) -> None:
        index = self.recipients_table.currentIndex()
        if index.isValid():
            self._controller.remove_envelope(index.row())

    def _on_row_selected(self, current: object, _previous: object) -> None:
        row = self.recipients_table.currentIndex().row()
        if row >= 0:
            self._controller.select_envelope(row)

    # --- controller -> widgets -----------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Files dragged anywhere on the form can be attached."""
        if _local_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        """Attach files dropped on the form."""
        files = _local_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            self._attach_paths(files)

    def _reload(self, draft: Draft) -> None:
        """Put every field of ``draft`` into the widgets (a new or opened draft)."""
        self._loading = True
        try:
            self.sender_email.setText(draft.sender.email)
            self.sender_name.setText(draft.sender.name)
            to = [a for e in draft.envelopes for a in e.to[:1]]
            self.to_edit.set_text_quietly(format_address_list(to))
            self.cc_edit.set_text_quietly(format_address_list(self._controller.cc))
            self.bcc_edit.set_text_quietly(format_address_list(draft.bcc))
            self.reply_to.setText(draft.reply_to)
            self.subject.setText(draft.subject)
            if self.body.toPlainText() != draft.body:
                self.body.setPlainText(draft.body)
            self.body_format.setCurrentIndex(self.body_format.findData(draft.body_format))
            if self.amp.toPlainText() != draft.amp:
                self.amp.setPlainText(draft.amp)
            self.tags.setText(", ".join(draft.tags))
            for key, box in self.tracking.items():
                value = getattr(draft.settings, key)
                box.setCheckState(
                    Qt.CheckState.PartiallyChecked if value is None
                    else Qt.CheckState.Checked if value else Qt.CheckState.Unchecked
                )
            self.ippool.setText(draft.settings.ippool)
            self.priority.setCurrentIndex(max(0, self.priority.findData(draft.priority)))
            if draft.schedule:
                self.schedule_enabled.setChecked(True)
                self.schedule.setDateTime(QDateTime.fromSecsSinceEpoch(draft.schedule))
            else:
                self.schedule_enabled.setChecked(False)
                soon = (datetime.now() + timedelta(hours=1)).replace(minute=0, second=0)
                self.schedule.setDateTime(QDateTime.fromSecsSinceEpoch(int(soon.timestamp())))
            self.schedule.setEnabled(bool(draft.schedule))
            self.template_id.setText("" if draft.template_id is None else str(draft.template_id))
        finally:
            self._loading = False
        if self._live:
            self._refresh_problems()
        self._on_draft_changed(draft)

    def set_live(self) -> None:
        """The window is on screen: check the addresses (the validator loads now)."""
        self._live = True
        self._refresh_problems()

    def _refresh_problems(self) -> None:
        for field, edit in (("to", self.to_edit), ("cc", self.cc_edit), ("bcc", self.bcc_edit)):
            self._show_address_problems(field, parse_address_list(edit.toPlainText()))

    def _on_draft_changed(self, draft: Draft) -> None:
        self._sync_address_fields(draft)
        if draft.attachments is not self._shown_attachments:
            self._show_attachments(draft)
        n = len(draft.envelopes)
        self.tabs.setTabText(
            self.TAB_RECIPIENTS, self.tr("Test &recipients ({n})").format(n=n)
        )
        keys = self._controller.used_placeholders()
        if keys != self._shown_keys:
            self._shown_keys = keys
            self.recipients_hint.setText(
                self.tr("Columns come from the placeholders in the subject and body: {keys}")
                .format(keys=", ".join(f"[%{k}%]" for k in keys))
                if keys
                else self.tr("Write [%KEY%] in the subject or body to add a column.")
            )

    def _show_attachments(self, draft: Draft) -> None:
        self._shown_attachments = draft.attachments
        self.attachments.clear()
        for att in draft.attachments:
            item = QListWidgetItem(icon("attach"), f"{att.name}  ·  {human_size(att.size)}")
            item.setToolTip(att.name)
            self.attachments.addItem(item)
        total = draft.attachment_bytes()
        self.attachments_total.setText(
            self.tr("{n} file(s), {size} in total").format(
                n=len(draft.attachments), size=human_size(total)
            )
            if draft.attachments
            else self.tr("No attachments. Drop files here or on the body.")
        )
        self.tabs.setTabText(
            self.TAB_ATTACHMENTS,
            self.tr("&Attachments ({n})").format(n=len(draft.attachments))
            if draft.attachments else self.tr("&Attachments"),
        )

    def _sync_address_fields(self, draft: Draft) -> None:
        """Show edits made in the table in the To field (unless the person is typing there)."""
        if not self._live:
            return
        wanted: list[tuple[QPlainTextEdit, str, tuple[Address, ...]]] = [
            (self.to_edit, "to", tuple(a for e in draft.envelopes for a in e.to[:1])),
            (self.cc_edit, "cc", draft.envelopes[0].cc if draft.envelopes else ()),
            (self.bcc_edit, "bcc", draft.bcc),
        ]
        for edit, field, addresses in wanted:
            if edit.hasFocus() or not isinstance(edit, AddressEdit):
                continue
            if field == "cc" and not draft.envelopes:
                continue
            current = tuple(p.address for p in parse_address_list(edit.toPlainText()))
            if current != addresses:
                edit.set_text_quietly(format_address_list(addresses))
                self._show_address_problems(field, parse_address_list(edit.toPlainText()))

    def _show_address_problems(self, field: str, parsed: list[ParsedAddress]) -> None:
        edit = {"to": self.to_edit, "cc": self.cc_edit, "bcc": self.bcc_edit}[field]
        edit.mark(parsed)
        bad = [p for p in parsed if p.problem]
        label = self.problem_labels[field]
        if not bad:
            label.setVisible(False)
            label.clear()
            edit.setProperty("invalid", False)
        else:
            shown = [p.problem or "" for p in bad[:3]]
            more = len(bad) - len(shown)
            text = "\n".join(shown)
            if more:
                text += "\n" + self.tr("…and {n} more").format(n=more)
            label.setText(text)
            label.setVisible(True)
            edit.setProperty("invalid", True)
        repolish(edit)

    # --- jumping to a field --------------------------------------------------------------------

    def focus_field(self, field: str, envelope: int | None = None, key: str | None = None) -> bool:
        """Show and focus the widget for a checks field name; ``False`` if unknown."""
        simple: dict[str, QWidget] = {
            "from": self.sender_email,
            "reply_to": self.reply_to,
            "subject": self.subject,
            "body": self.body,
        }
        if field in simple:
            simple[field].setFocus(Qt.FocusReason.OtherFocusReason)
            return True
        if field in ("to", "cc", "bcc"):
            edit = {"to": self.to_edit, "cc": self.cc_edit, "bcc": self.bcc_edit}[field]
            if field == "to" and key is None and envelope is not None:
                self._select_row(envelope, EMAIL_COLUMN, edit_cell=False)
            edit.setFocus(Qt.FocusReason.OtherFocusReason)
            parsed = parse_address_list(edit.toPlainText())
            bad = [p for p in parsed if p.problem]
            target = None
            if field == "to" and envelope is not None and envelope < len(parsed):
                target = parsed[envelope]
            elif bad:
                target = bad[0]
            if target is not None:
                edit.select_span(target.start, target.end)
            return True
        tab_fields = {
            "attachments": (self.TAB_ATTACHMENTS, self.attachments),
            "tags": (self.TAB_OPTIONS, self.tags),
            "schedule": (self.TAB_OPTIONS, self.schedule_enabled),
            "priority": (self.TAB_OPTIONS, self.priority),
            "template_id": (self.TAB_OPTIONS, self.template_id),
            "amp": (self.TAB_AMP, self.amp),
        }
        if field in tab_fields:
            tab, widget = tab_fields[field]
            self.tabs.setCurrentIndex(tab)
            widget.setFocus(Qt.FocusReason.OtherFocusReason)
            return True
        if field == "recipients":
            column = EMAIL_COLUMN
            if key is not None:
                found = self.recipients_model.column_for_key(key)
                column = found if found >= 0 else EMAIL_COLUMN
            row = envelope if envelope is not None else 0
            self._select_row(row, column, edit_cell=key is not None)
            return True
        return False

    def _select_row(self, row: int, column: int, *, edit_cell: bool) -> None:
        self.tabs.setCurrentIndex(self.TAB_RECIPIENTS)
        if row >= self.recipients_model.rowCount():
            self.recipients_table.setFocus(Qt.FocusReason.OtherFocusReason)
            return
        index = self.recipients_model.index(row, column)
        self.recipients_table.setCurrentIndex(index)
        self.recipients_table.scrollTo(index)
        self.recipients_table.setFocus(Qt.FocusReason.OtherFocusReason)
        if edit_cell:
            self.recipients_table.edit(index)


def file_url(path: Path) -> QUrl:
    """A ``file:`` URL for ``path`` (used by tests that simulate drops)."""
    return QUrl.fromLocalFile(str(path))
