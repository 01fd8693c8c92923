"""The history browser: find what was sent, see it exactly as sent, resend it.

Netcore keeps no copy of sent mail (``shared/netcore-api.md`` §5), so support staff look
here. The search box searches as you type (debounced; the query runs in a worker thread,
newest query only) over recipient, subject, message id, correlation token, tag and body;
the filter row narrows by recipient, subject, message id, token, tag, profile, status and
dates. Selecting an entry shows the message as its recipient saw it (the stored request's
HTML with that envelope's values filled in, in the same preview pane the compose window
uses), the request, the answer, and its delivery events, fetched from the profile's events
endpoint by correlation token (§8) in the worker. Actions: open as a new draft, resend as
it was, resend to a corrected address, copy a summary for a support ticket, and send many
selected entries again as a bulk job (one job per profile that sent them).

Nothing here touches SQLite, the keyring or the network on the GUI thread: every such call
is a task of :mod:`.tasks`, and what comes back are plain frozen values.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from PySide6.QtCore import (
    QT_TRANSLATE_NOOP,
    QCoreApplication,
    QDate,
    QItemSelection,
    QObject,
    QSize,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QAction, QBrush, QColor, QFontDatabase, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from netcore_desktop.core.message import Draft
from netcore_desktop.ui.common import named, panel_action, set_tab_order, state_label, with_shortcut
from netcore_desktop.ui.preview import PreviewPane, open_link
from netcore_desktop.ui.qt_compat import emit
from netcore_desktop.ui.render_worker import PreviewDetails, PreviewFrame
from netcore_desktop.ui.row_model import Index, RowTableModel
from netcore_desktop.ui.tasks import SupportContext, TaskRunner

log = logging.getLogger(__name__)


#: Wait after the last keystroke before searching.
SEARCH_DEBOUNCE_MS: Final = 120
#: Entries shown per search (the newest first).
SEARCH_LIMIT: Final = 500
#: Envelopes of one entry whose preview is prepared (the rest are summed up).
MAX_PREVIEW_ENVELOPES: Final = 50

#: Status filter choices: label → outcomes. The labels are marked for the translation
#: extractor here and translated where the filter box is filled.
_STATUS_CHOICES: Final = (
    (QT_TRANSLATE_NOOP("HistoryBrowser", "any"), ()),
    (QT_TRANSLATE_NOOP("HistoryBrowser", "accepted (sent or queued)"), ("sent", "queued")),
    (QT_TRANSLATE_NOOP("HistoryBrowser", "sent"), ("sent",)),
    (QT_TRANSLATE_NOOP("HistoryBrowser", "queued (daily limit)"), ("queued",)),
    (QT_TRANSLATE_NOOP("HistoryBrowser", "refused"), ("refused",)),
    (QT_TRANSLATE_NOOP("HistoryBrowser", "failed"), ("failed",)),
    (QT_TRANSLATE_NOOP("HistoryBrowser", "unknown (may have been sent)"), ("unknown",)),
    (QT_TRANSLATE_NOOP("HistoryBrowser", "not sent yet (pending)"), ("pending",)),
    (QT_TRANSLATE_NOOP("HistoryBrowser", "cancelled"), ("cancelled",)),
)


# --- values that cross from the worker ----------------------------------------------------------


@dataclass(frozen=True)
class SearchQuery:
    """Everything the search box and the filter row say."""

    text: str = ""
    recipient: str = ""
    subject: str = ""
    message_id: str = ""
    token: str = ""
    tag: str = ""
    profile: str = ""
    outcomes: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    limit: int = SEARCH_LIMIT


@dataclass(frozen=True)
class EntryRow:
    """One history entry as the results table shows it (no large fields)."""

    id: int
    created_at: datetime
    profile: str
    outcome: str
    status_code: int | None
    meaning: str
    message_id: str
    subject: str
    recipients: tuple[str, ...]
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    credits: int
    resend_of: int | None
    job_id: int | None

    @property
    def accepted(self) -> bool:
        """Whether Netcore took it (sent or queued)."""
        return self.outcome in ("sent", "queued")


@dataclass(frozen=True)
class SearchResult:
    """The entries one query found."""

    query: SearchQuery
    rows: tuple[EntryRow, ...]
    #: Whether more entries match than were returned.
    more: bool
    elapsed_ms: float


@dataclass(frozen=True)
class EntryDetails:
    """Everything shown for the selected entry."""

    row: EntryRow
    #: The draft as composed (for "open as new draft" and the recipient chooser).
    draft: Draft
    #: One frame per envelope (up to :data:`MAX_PREVIEW_ENVELOPES`), as each recipient saw it.
    frames: tuple[PreviewFrame, ...]
    details: tuple[PreviewDetails, ...]
    request_text: str
    answer_text: str
    summary: str
    #: Entries that resent this one, and the one this one resent.
    resends: tuple[EntryRow, ...]
    original: EntryRow | None


@dataclass(frozen=True)
class EventsResult:
    """Delivery events of one entry (``lookup`` is a core ``EventLookup``)."""

    entry_id: int
    lookup: Any
    summary: str


@dataclass(frozen=True)
class ResendPlan:
    """A resend prepared in the worker, waiting for the person's confirmation."""

    key: int
    entry_id: int
    profile: str
    live: bool
    credits: int
    recipients: tuple[str, ...]
    subject: str
    #: The original's outcome, status and time, for the "already got it" warning.
    original_outcome: str
    original_status: int | None
    original_time: datetime
    warnings: tuple[str, ...]
    blocking: tuple[str, ...]


@dataclass(frozen=True)
class ResendDone:
    """What a resend did."""

    entry_id: int
    attempt_id: int | None
    ok: bool
    outcome: str
    meaning: str
    message_id: str
    #: Response log entries (``send_worker.LogEntry``) of the requests sent.
    log_entries: tuple[Any, ...]


# --- tasks (run in the worker thread) -----------------------------------------------------------


def _row_of(entry: Any) -> EntryRow:
    return EntryRow(
        id=entry.id,
        created_at=entry.created_at,
        profile=entry.profile,
        outcome=str(entry.outcome),
        status_code=entry.status_code,
        meaning=entry.meaning,
        message_id=entry.message_id,
        subject=entry.subject,
        recipients=entry.recipients,
        tokens=entry.tokens,
        tags=entry.tags,
        credits=entry.credits,
        resend_of=entry.resend_of,
        job_id=entry.job_id,
    )


def search_task(ctx: SupportContext, query: SearchQuery) -> SearchResult:
    """Run ``query`` over the history."""
    started = time.perf_counter()
    entries = ctx.history().search(
        query.text,
        recipient=query.recipient or None,
        subject=query.subject or None,
        message_id=query.message_id or None,
        token=query.token or None,
        tag=query.tag or None,
        profile=query.profile or None,
        outcome=query.outcomes or None,
        since=query.since,
        until=query.until,
        limit=query.limit + 1,
    )
    rows = tuple(_row_of(e) for e in entries[: query.limit])
    return SearchResult(query, rows, len(entries) > query.limit,
                        (time.perf_counter() - started) * 1000)


def profile_names_task(ctx: SupportContext) -> list[str]:
    """Names of the saved profiles (for the profile filter)."""
    try:
        return [p.name for p in ctx.profiles().list()]
    except Exception:
        log.exception("the profiles could not be read")
        return []


def _stored_html(payload: dict[str, Any]) -> str:
    for part in payload.get("content") or []:
        if isinstance(part, dict) and part.get("type") == "html":
            return str(part.get("value", ""))
    return ""


def _answer_text(entry: Any) -> str:
    no_answer = QCoreApplication.translate("HistoryBrowser", "(no answer)")
    lines = [
        QCoreApplication.translate("HistoryBrowser", "Outcome: {value}").format(
            value=state_label(str(entry.outcome))),
        QCoreApplication.translate("HistoryBrowser", "HTTP status: {value}").format(
            value=entry.status_code if entry.status_code is not None else no_answer),
        QCoreApplication.translate("HistoryBrowser", "Meaning: {value}").format(
            value=entry.meaning),
        QCoreApplication.translate("HistoryBrowser", "Message id: {value}").format(
            value=entry.message_id or QCoreApplication.translate("HistoryBrowser", "(none)")),
        QCoreApplication.translate("HistoryBrowser", "Tries: {value}").format(
            value=entry.attempts),
    ]
    if entry.latency_ms is not None:
        lines.append(QCoreApplication.translate("HistoryBrowser", "Latency: {ms} ms").format(
            ms=f"{entry.latency_ms:.0f}"))
    if entry.completed_at is not None:
        lines.append(QCoreApplication.translate("HistoryBrowser", "Answered: {time}").format(
            time=f"{entry.completed_at.astimezone():%Y-%m-%d %H:%M:%S}"))
    if entry.error:
        lines.append(QCoreApplication.translate("HistoryBrowser", "Error: {error}").format(
            error=entry.error))
    lines.append("")
    body = entry.response_body
    with contextlib.suppress(TypeError, ValueError):
        body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    lines.append(body or QCoreApplication.translate("HistoryBrowser", "(no response body)"))
    return "\n".join(lines) + "\n"


def load_entry_task(ctx: SupportContext, entry_id: int) -> EntryDetails:
    """The selected entry with its per-recipient previews, request and answer."""
    from netcore_desktop.core.history import support_summary
    from netcore_desktop.core.render import html_to_text, remote_urls, substitute
    from netcore_desktop.ui.render_worker import _display_payload

    history = ctx.history()
    entry = history.get(entry_id)
    payload = entry.payload
    html = _stored_html(payload)
    subject = str(payload.get("subject", entry.subject))
    sender = entry.draft.sender.display()
    envelopes = [e for e in payload.get("personalizations") or [] if isinstance(e, dict)]
    frames: list[PreviewFrame] = []
    details: list[PreviewDetails] = []
    request_json = json.dumps(_display_payload(payload), indent=2, ensure_ascii=False)
    if not html and payload.get("template_id") is not None:
        html = "<p><em>{}</em></p>".format(QCoreApplication.translate(
            "HistoryBrowser", "Sent with the stored template #{id}: its content lives on the "
            "Netcore account.").format(id=payload["template_id"]))
    for index, env in enumerate(envelopes[:MAX_PREVIEW_ENVELOPES] or [{}]):
        attributes = {str(k): str(v) for k, v in (env.get("attributes") or {}).items()}
        shown = substitute(html, attributes)
        to = ", ".join(
            (f"{a.get('name')} <{a.get('email')}>" if a.get("name") else str(a.get("email")))
            for a in env.get("to") or [] if isinstance(a, dict)
        )
        frames.append(
            PreviewFrame(
                generation=index,
                envelope=index,
                html=shown,
                subject=substitute(subject, attributes),
                sender=sender,
                to=to,
                sent_bytes=len(html.encode("utf-8")),
                remote_count=len(remote_urls(shown)),
                render_ms=0.0,
                created=time.perf_counter(),
            )
        )
        headers = [
            "# " + QCoreApplication.translate(
                "HistoryBrowser", "HTTP request as sent (the key is never stored)"),
            f"POST {entry.endpoint}",
            f"Transport: {entry.transport}, API {entry.api_version}, profile {entry.profile}",
            "",
            "# " + QCoreApplication.translate("HistoryBrowser", "This recipient"),
            f"To: {to}",
            f"Subject: {substitute(subject, attributes)}",
            f"X-APIHEADER: {env.get('token_to', '')}",
        ]
        if entry.tags:
            headers.append("X-TAGS: " + ", ".join(entry.tags))
        for name, value in (env.get("headers") or {}).items():
            headers.append(f"{name}: {value}")
        details.append(
            PreviewDetails(
                generation=index,
                text=html_to_text(shown),
                request_json=request_json,
                headers="\n".join(headers) + "\n",
                problems=(),
                credits=entry.credits,
            )
        )
    request_text = (
        f"POST {entry.endpoint}\n"
        + QCoreApplication.translate(
            "HistoryBrowser", "Sent {time} with profile {profile} ({transport}, API {api}); "
            "{credits} credit(s)").format(
            time=f"{entry.created_at.astimezone():%Y-%m-%d %H:%M:%S}", profile=entry.profile,
            transport=entry.transport, api=entry.api_version, credits=entry.credits)
        + "\n\n"
        + request_json
        + "\n"
    )
    original = None
    if entry.resend_of is not None:
        try:
            original = _row_of(history.get(entry.resend_of))
        except KeyError:
            original = None
    return EntryDetails(
        row=_row_of(entry),
        draft=entry.draft,
        frames=tuple(frames),
        details=tuple(details),
        request_text=request_text,
        answer_text=_answer_text(entry),
        summary=support_summary(entry),
        resends=tuple(_row_of(e) for e in history.resends_of(entry_id)),
        original=original,
    )


def events_task(ctx: SupportContext, entry_id: int) -> EventsResult:
    """Delivery events of an entry, from its profile's events endpoint by token."""
    from netcore_desktop.core.history import EventLookup, fetch_events, support_summary
    from netcore_desktop.core.sending import SendError

    entry = ctx.history().get(entry_id)
    try:
        profile = ctx.profile(entry.profile)
    except KeyError:
        lookup = EventLookup(
            (), False,
            QCoreApplication.translate(
                "HistoryBrowser", "The profile “{profile}” that sent this was removed: its "
                "events cannot be asked for.").format(profile=entry.profile),
        )
        return EventsResult(entry_id, lookup, support_summary(entry, lookup))
    try:
        client = ctx.service(profile).client()
    except SendError as exc:
        lookup = EventLookup((), False, QCoreApplication.translate(
            "HistoryBrowser", "Events need the profile's API key: {error}").format(error=exc))
        return EventsResult(entry_id, lookup, support_summary(entry, lookup))
    lookup = fetch_events(client, entry)
    return EventsResult(entry_id, lookup, support_summary(entry, lookup))


_plan_keys = iter(range(1, 1 << 62))


def prepare_resend_task(ctx: SupportContext, entry_id: int, to: str | None) -> ResendPlan:
    """Prepare resending an entry (fresh tokens, fresh checks); kept until confirmed."""
    from netcore_desktop.core.sending import SendError
    from netcore_desktop.ui.send_worker import is_live

    history = ctx.history()
    entry = history.get(entry_id)
    try:
        profile = ctx.profile(entry.profile)
    except KeyError:
        raise SendError(
            "not_found",
            QCoreApplication.translate(
                "HistoryBrowser", "The profile “{profile}” that sent this no longer exists: "
                "add it again (Settings → Profiles) to resend.").format(profile=entry.profile),
        ) from None
    service = ctx.service(profile)
    prepared = service.prepare_resend(entry_id, to=to)
    key = next(_plan_keys)
    ctx.kept[("resend", key)] = (service, prepared, entry_id)
    return ResendPlan(
        key=key,
        entry_id=entry_id,
        profile=profile.name,
        live=is_live(profile),
        credits=prepared.credits,
        recipients=tuple(a.email for a in prepared.draft.recipients()),
        subject=entry.subject,
        original_outcome=str(entry.outcome),
        original_status=entry.status_code,
        original_time=entry.created_at,
        warnings=tuple(p.message for p in prepared.warnings),
        blocking=tuple(p.message for p in prepared.problems if p.blocking),
    )


def send_resend_task(ctx: SupportContext, key: int) -> ResendDone:
    """Send a confirmed resend as a new attempt linked to the original."""
    from netcore_desktop.ui.send_worker import LogEntry

    service, prepared, entry_id = ctx.kept.pop(("resend", key))
    outcome = service.send(prepared, resend_of=entry_id)
    now = datetime.now().astimezone()
    entries = tuple(
        LogEntry(
            time=now,
            profile=service.profile.name,
            endpoint=service.endpoint,
            status_code=sent.result.status_code,
            outcome=str(sent.result.outcome),
            meaning=sent.result.meaning,
            message_id=sent.result.message_id or "",
            latency_ms=sent.result.latency_ms,
            recipients=sent.recipients,
            tokens=prepared.tokens,
            attempt_id=sent.attempt_id,
            attempts=sent.result.attempts,
            request=sent.result.request,
            response_body=sent.result.response_body,
            errors=tuple((e.field, e.message) for e in sent.result.errors),
        )
        for sent in outcome.requests
    )
    result = outcome.result
    return ResendDone(
        entry_id, outcome.attempt_id, outcome.ok, str(outcome.outcome), result.meaning,
        result.message_id or "", entries,
    )


def drop_resend_task(ctx: SupportContext, key: int) -> None:
    """Forget a resend the person did not confirm."""
    ctx.kept.pop(("resend", key), None)


# --- the results table -----------------------------------------------------------------------

COLUMNS: Final = ("time", "to", "subject", "status", "message_id", "profile", "linked")

_OUTCOME_COLOURS: Final = {
    "sent": "#1a7f37",
    "queued": "#9a6700",
    "cancelled": "#9a6700",
    "pending": "#59636e",
}


class HistoryResultsModel(RowTableModel[EntryRow]):
    """Search results, newest first."""

    columns = COLUMNS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._titles = {
            "time": self.tr("Sent"),
            "to": self.tr("To"),
            "subject": self.tr("Subject"),
            "status": self.tr("Status"),
            "message_id": self.tr("Message id"),
            "profile": self.tr("Profile"),
            "linked": self.tr("Linked"),
        }

    def set_rows(self, rows: tuple[EntryRow, ...]) -> None:
        """Show these rows."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def entry(self, row: int) -> EntryRow:
        """The entry of ``row``."""
        return self._rows[row]

    def row_of(self, entry_id: int) -> int:
        """The row showing entry ``entry_id`` (-1 if none)."""
        for i, r in enumerate(self._rows):
            if r.id == entry_id:
                return i
        return -1

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text, and the outcome's colour."""
        cell = self._cell(index)
        if cell is None:
            return None
        entry, column = cell
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._text(entry, column, tooltip=role == Qt.ItemDataRole.ToolTipRole)
        if role == Qt.ItemDataRole.ForegroundRole and column == "status":
            return QBrush(QColor(_OUTCOME_COLOURS.get(entry.outcome, "#cf222e")))
        return None

    def _text(self, entry: EntryRow, column: str, *, tooltip: bool) -> str:
        if column == "time":
            return entry.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
        if column == "to":
            shown = ", ".join(entry.recipients if tooltip else entry.recipients[:2])
            more = len(entry.recipients) - 2
            return shown + (self.tr(" +{n}").format(n=more) if more > 0 and not tooltip else "")
        if column == "subject":
            return entry.subject
        if column == "status":
            code = f" · {entry.status_code}" if entry.status_code is not None else ""
            return f"{state_label(entry.outcome)}{code}" if not tooltip else entry.meaning
        if column == "message_id":
            return entry.message_id
        if column == "profile":
            return entry.profile
        if column == "linked":
            parts = []
            if entry.resend_of is not None:
                parts.append(self.tr("resend of #{id}").format(id=entry.resend_of))
            if entry.job_id is not None:
                parts.append(self.tr("job #{id}").format(id=entry.job_id))
            return ", ".join(parts)
        return ""


# --- the widget ----------------------------------------------------------------------------------


class HistoryBrowser(QWidget):
    """Search box, filters, results, and the selected entry's message, request, answer, events."""

    #: The person asked to open an entry as a new draft (a core ``Draft``).
    open_draft_requested = Signal(object)
    #: A resend finished (a :class:`ResendDone`).
    resent = Signal(object)
    #: The person asked to send the selected entries again as a bulk job (entry ids, all
    #: sent with one profile: a selection over several profiles emits once per profile).
    bulk_resend_requested = Signal(object)
    #: Text for the status bar.
    status_message = Signal(str)
    #: A search finished and its results are shown (the :class:`SearchResult`).
    results_shown = Signal(object)
    #: The selected entry's details are shown (the :class:`EntryDetails`).
    entry_shown = Signal(object)
    #: Delivery events are shown (the :class:`EventsResult`).
    events_shown = Signal(object)

    TAB_MESSAGE = 0
    TAB_REQUEST = 1
    TAB_ANSWER = 2
    TAB_EVENTS = 3
    TAB_SUMMARY = 4

    def __init__(self, tasks: TaskRunner | None = None, search_tasks: TaskRunner | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "historyBrowser", self.tr("History browser"))
        self._owns_tasks = tasks is None
        self.tasks = tasks or TaskRunner(name="history-worker", parent=self)
        self._owns_search = search_tasks is None
        self.search_tasks = search_tasks or TaskRunner(
            SupportContext(), name="history-search", parent=self
        )
        self._details: EntryDetails | None = None
        self._events: EventsResult | None = None
        self._shown_once = False
        self._shut = False
        self._pending_select: int | None = None
        #: Milliseconds the last search took in the worker (for tests and the status line).
        self.last_search_ms = 0.0
        self.searches = 0
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        # --- search and filters -------------------------------------------------------------------
        self.search = named(
            QLineEdit(), "historySearch", self.tr("Search the history"),
            with_shortcut(
                self.tr("Search recipients, subjects, message ids, tokens, tags and text"),
                "Ctrl+F",
            ),
        )
        self.search.setPlaceholderText(
            self.tr("Search: address, subject, message id, token, tag, words in the body…")
        )
        self.search.setClearButtonEnabled(True)
        self.filters_button = named(
            QToolButton(), "historyFiltersToggle", self.tr("Show filters"),
            with_shortcut(self.tr("Show or hide the filter row"), "Ctrl+Shift+L"),
        )
        self.filters_button.setText(self.tr("Filters"))
        self.filters_button.setCheckable(True)
        self.count_label = named(QLabel(), "historyCount", self.tr("Entries found"))
        self.count_label.setProperty("role", "hint")

        def field(name: str, accessible: str, placeholder: str) -> QLineEdit:
            edit = named(QLineEdit(), name, accessible, placeholder)
            edit.setPlaceholderText(placeholder)
            edit.setClearButtonEnabled(True)
            return edit

        self.recipient_filter = field(
            "historyRecipient", self.tr("Recipient filter"), self.tr("Recipient starts with…")
        )
        self.subject_filter = field(
            "historySubject", self.tr("Subject filter"), self.tr("Words of the subject…")
        )
        self.message_id_filter = field(
            "historyMessageId", self.tr("Message id filter"), self.tr("Message id…")
        )
        self.token_filter = field(
            "historyToken", self.tr("Correlation token filter"), self.tr("Token (nd-…)…")
        )
        self.tag_filter = field("historyTag", self.tr("Tag filter"), self.tr("Tag…"))
        self.profile_filter = named(
            QComboBox(), "historyProfile", self.tr("Profile filter"),
            self.tr("Only entries sent with this profile"),
        )
        self.profile_filter.addItem(self.tr("All profiles"), "")
        self.status_filter = named(
            QComboBox(), "historyStatus", self.tr("Status filter"),
            self.tr("Only entries with this outcome"),
        )
        for index, (label, _outcomes) in enumerate(_STATUS_CHOICES):
            self.status_filter.addItem(QCoreApplication.translate("HistoryBrowser", str(label)),
                                       index)
        self.date_check = named(
            QCheckBox(self.tr("Dates")), "historyDatesEnabled", self.tr("Filter by date"),
            self.tr("Only entries sent between these dates (inclusive)"),
        )
        today = QDate.currentDate()
        self.date_from = named(QDateEdit(today.addDays(-30)), "historyDateFrom",
                               self.tr("From date"), self.tr("First day (inclusive)"))
        self.date_to = named(QDateEdit(today), "historyDateTo", self.tr("To date"),
                             self.tr("Last day (inclusive)"))
        for date_edit in (self.date_from, self.date_to):
            date_edit.setCalendarPopup(True)
            date_edit.setDisplayFormat("yyyy-MM-dd")
            date_edit.setEnabled(False)
        self.clear_filters_button = named(
            QPushButton(self.tr("Clear")), "historyClearFilters", self.tr("Clear the filters"),
            self.tr("Empty the search box and every filter"),
        )

        top = QHBoxLayout()
        title = QLabel(self.tr("History"))
        title.setProperty("role", "paneTitle")
        top.addWidget(title)
        top.addWidget(self.search, 1)
        top.addWidget(self.filters_button)
        top.addWidget(self.count_label)
        self.filter_row = QWidget()
        self.filter_row.setObjectName("historyFilterRow")
        filters = QHBoxLayout(self.filter_row)
        filters.setContentsMargins(0, 0, 0, 0)
        for edit in (self.recipient_filter, self.subject_filter, self.message_id_filter,
                     self.token_filter, self.tag_filter):
            filters.addWidget(edit, 1)
        others: tuple[QWidget, ...] = (
            self.profile_filter, self.status_filter, self.date_check, self.date_from,
            self.date_to, self.clear_filters_button,
        )
        for widget in others:
            filters.addWidget(widget)
        self.filter_row.setVisible(False)

        # --- results ------------------------------------------------------------------------------
        self.model = HistoryResultsModel(self)
        self.table = named(
            QTableView(), "historyTable", self.tr("History entries"),
            self.tr("Every send attempt found, newest first; select one to see it"),
        )
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setTabKeyNavigation(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        widths = {"time": 120, "to": 200, "subject": 260, "status": 90, "message_id": 240,
                  "profile": 100, "linked": 120}
        for i, column in enumerate(COLUMNS):
            header.resizeSection(i, widths[column])
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)

        # --- actions ------------------------------------------------------------------------------
        self.act_open_draft = self._action(
            "historyOpenDraft", self.tr("Open as new draft"), "Ctrl+Shift+O",
            self.tr("Open this message in the compose form as a new draft"), "open",
        )
        self.act_resend = self._action(
            "historyResend", self.tr("Resend…"), "Ctrl+R",
            self.tr("Send this message again, as it was, to the same recipients"), "send",
        )
        self.act_resend_to = self._action(
            "historyResendTo", self.tr("Resend to corrected address…"), "Ctrl+Shift+R",
            self.tr("Send this message again to a corrected address"), "send",
        )
        self.act_copy_summary = self._action(
            "historyCopySummary", self.tr("Copy summary"), "Ctrl+Shift+C",
            self.tr("Copy a short plain-text summary for a support ticket"), "copy",
        )
        self.act_refresh_events = self._action(
            "historyRefreshEvents", self.tr("Refresh events"), "F5",
            self.tr("Ask Netcore again for this message's delivery events"),
        )
        self.act_bulk = self._action(
            "historyBulkResend", self.tr("Resend selected as a bulk job…"), "Ctrl+Shift+B",
            self.tr("Send every selected entry again, as one job with progress and pause"),
            "send",
        )
        # A tool bar, not a row of buttons: in a narrow dock the actions that do not fit go
        # into its ">>" menu, and the results list keeps its room (a row of six labelled
        # buttons was ~800 px wide and squeezed the list to two columns).
        self.buttons: dict[str, QToolButton] = {}
        bar = named(QToolBar(), "historyActions", self.tr("Actions on the selected entry"))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.setIconSize(QSize(16, 16))
        for action in (self.act_open_draft, self.act_resend, self.act_resend_to,
                       self.act_copy_summary, self.act_refresh_events, self.act_bulk):
            bar.addAction(action)
            button = bar.widgetForAction(action)
            assert isinstance(button, QToolButton)
            named(button, action.objectName() + "Button", action.text().rstrip("…"),
                  action.toolTip())
            button.setFocusPolicy(Qt.FocusPolicy.TabFocus)
            self.buttons[action.objectName()] = button

        # --- details ------------------------------------------------------------------------------
        self.preview = PreviewPane()
        self.preview.setObjectName("historyPreview")
        self.preview.setAccessibleName(self.tr("The message as sent"))
        # A link in the message opens outside after a question, as in the compose preview.
        self.preview.link_requested.connect(self._open_link)
        self.request_view = named(QPlainTextEdit(), "historyRequest", self.tr("Request as sent"),
                                  self.tr("The request body exactly as stored (no key)"))
        self.answer_view = named(QPlainTextEdit(), "historyAnswer", self.tr("Answer"),
                                 self.tr("Status, meaning and the response body"))
        self.summary_view = named(QPlainTextEdit(), "historySummary",
                                  self.tr("Summary for a support ticket"),
                                  self.act_copy_summary.toolTip())
        for view in (self.request_view, self.answer_view, self.summary_view):
            view.setReadOnly(True)
            view.setFont(mono)
        self.events_label = named(QLabel(), "historyEventsLabel", self.tr("Events status"))
        self.events_label.setWordWrap(True)
        self.events_table = named(QTableWidget(0, 4), "historyEvents",
                                  self.tr("Delivery events"),
                                  self.tr("Events Netcore reported for this message, oldest "
                                          "first"))
        self.events_table.setHorizontalHeaderLabels(
            [self.tr("Time"), self.tr("Event"), self.tr("Recipient"), self.tr("Detail")]
        )
        self.events_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.events_table.verticalHeader().setVisible(False)
        self.events_table.horizontalHeader().setStretchLastSection(True)
        events_page = QWidget()
        events_layout = QVBoxLayout(events_page)
        events_layout.setContentsMargins(0, 4, 0, 0)
        events_layout.addWidget(self.events_label)
        events_layout.addWidget(self.events_table, 1)
        self.links_label = named(QLabel(), "historyLinks", self.tr("Linked entries"))
        self.links_label.setProperty("role", "hint")
        self.links_label.setWordWrap(True)
        self.details_tabs = named(QTabWidget(), "historyDetailsTabs",
                                  self.tr("Selected entry"))
        self.details_tabs.setDocumentMode(True)
        self.details_tabs.addTab(self.preview, self.tr("Message"))
        self.details_tabs.addTab(self.request_view, self.tr("Request"))
        self.details_tabs.addTab(self.answer_view, self.tr("Answer"))
        self.details_tabs.addTab(events_page, self.tr("Events"))
        self.details_tabs.addTab(self.summary_view, self.tr("Summary"))
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(bar)
        right_layout.addWidget(self.links_label)
        right_layout.addWidget(self.details_tabs, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("historySplitter")
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 4)
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addLayout(top)
        layout.addWidget(self.filter_row)
        layout.addWidget(self.splitter, 1)

        # --- behaviour ----------------------------------------------------------------------------
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self.run_search)
        for edit in (self.search, self.recipient_filter, self.subject_filter,
                     self.message_id_filter, self.token_filter, self.tag_filter):
            edit.textChanged.connect(self._schedule)
        for combo in (self.profile_filter, self.status_filter):
            combo.currentIndexChanged.connect(self._schedule)
        self.date_check.toggled.connect(self._on_dates_toggled)
        self.date_from.dateChanged.connect(self._schedule)
        self.date_to.dateChanged.connect(self._schedule)
        self.filters_button.toggled.connect(self.filter_row.setVisible)
        self.clear_filters_button.clicked.connect(self.clear_filters)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self.preview.recipient_selected.connect(self._on_envelope)
        self.act_open_draft.triggered.connect(self.open_as_draft)
        self.act_resend.triggered.connect(self.resend)
        self.act_resend_to.triggered.connect(self.resend_to_corrected)
        self.act_copy_summary.triggered.connect(self.copy_summary)
        self.act_refresh_events.triggered.connect(self.refresh_events)
        self.act_bulk.triggered.connect(self._on_bulk)
        focus = QAction(self)
        focus.setShortcut(QKeySequence("Ctrl+F"))
        focus.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        focus.triggered.connect(self.focus_search)
        self.addAction(focus)
        toggle = QAction(self)
        toggle.setShortcut(QKeySequence("Ctrl+Shift+L"))
        toggle.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        toggle.triggered.connect(self.filters_button.toggle)
        self.addAction(toggle)
        QWidget.setTabOrder(self.search, self.filters_button)
        QWidget.setTabOrder(self.filters_button, self.recipient_filter)
        set_tab_order(
            self.recipient_filter, self.subject_filter, self.message_id_filter,
            self.token_filter, self.tag_filter, self.profile_filter, self.status_filter,
            self.date_check, self.date_from, self.date_to, self.clear_filters_button,
            self.table, self.details_tabs,
        )
        self._update_actions()

    # --- building -----------------------------------------------------------------------------

    def _action(self, name: str, text: str, shortcut: str, tip: str, icon_name: str = ""
                ) -> QAction:
        return panel_action(self, name, text, shortcut, tip, icon_name)

    def showEvent(self, event: QShowEvent) -> None:
        """Create the preview's web view and run the first search when first shown."""
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            # The details' size hints (a preview, a tool bar) would take nearly all the
            # width; give the results list three parts in seven, as the stretch says.
            width = max(self.splitter.width(), 700)
            self.splitter.setSizes([width * 3 // 7, width - width * 3 // 7])
            QTimer.singleShot(0, self._after_first_show)

    def _after_first_show(self) -> None:
        if self._shut:
            return
        self.preview.create_web_view()
        self.reload_profiles()
        self.run_search()

    # --- searching ----------------------------------------------------------------------------

    def focus_search(self) -> None:
        """Put the cursor in the search box (Ctrl+F)."""
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def reload_profiles(self) -> None:
        """Refill the profile filter from the saved profiles (read in the worker)."""
        self.tasks.submit(profile_names_task, on_done=self._on_profiles)

    def _on_profiles(self, names: list[str]) -> None:
        current = self.profile_filter.currentData()
        self.profile_filter.blockSignals(True)
        self.profile_filter.clear()
        self.profile_filter.addItem(self.tr("All profiles"), "")
        for name in names:
            self.profile_filter.addItem(name, name)
        index = self.profile_filter.findData(current)
        self.profile_filter.setCurrentIndex(max(0, index))
        self.profile_filter.blockSignals(False)

    def _on_dates_toggled(self, enabled: bool) -> None:
        self.date_from.setEnabled(enabled)
        self.date_to.setEnabled(enabled)
        self._schedule()

    def clear_filters(self) -> None:
        """Empty the search box and every filter."""
        for edit in (self.search, self.recipient_filter, self.subject_filter,
                     self.message_id_filter, self.token_filter, self.tag_filter):
            edit.blockSignals(True)
            edit.clear()
            edit.blockSignals(False)
        self.profile_filter.setCurrentIndex(0)
        self.status_filter.setCurrentIndex(0)
        self.date_check.setChecked(False)
        self._schedule()

    def _schedule(self, *_args: object) -> None:
        self._debounce.start()

    def query(self) -> SearchQuery:
        """The search the box and the filters describe now."""
        since = until = None
        if self.date_check.isChecked():
            start, end = self.date_from.date(), self.date_to.date()
            # Naive datetimes are the person's local time (History.search says so).
            since = datetime(start.year(), start.month(), start.day())
            until = datetime(end.year(), end.month(), end.day()) + timedelta(days=1)
        choice = self.status_filter.currentData()
        outcomes = _STATUS_CHOICES[choice][1] if isinstance(choice, int) else ()
        return SearchQuery(
            text=self.search.text(),
            recipient=self.recipient_filter.text().strip(),
            subject=self.subject_filter.text(),
            message_id=self.message_id_filter.text().strip(),
            token=self.token_filter.text().strip(),
            tag=self.tag_filter.text().strip(),
            profile=str(self.profile_filter.currentData() or ""),
            outcomes=tuple(outcomes),
            since=since,
            until=until,
        )

    def run_search(self) -> None:
        """Search now (the newest search replaces any still waiting)."""
        self._debounce.stop()
        self.search_tasks.submit(search_task, self.query(), on_done=self._on_results,
                                 on_error=self._on_search_error, latest="search")

    def refresh(self) -> None:
        """Search again with the same terms (e.g. after a send)."""
        self.run_search()

    def _on_results(self, result: SearchResult) -> None:
        if self._shut:
            return
        self.searches += 1
        self.last_search_ms = result.elapsed_ms
        selected = self.current_entry_id()
        self.model.set_rows(result.rows)
        n = len(result.rows)
        count = self.tr("{n}+ entries").format(n=n) if result.more else (
            self.tr("1 entry") if n == 1 else self.tr("{n} entries").format(n=n)
        )
        self.count_label.setText(count)
        self.count_label.setToolTip(
            self.tr("Found in {ms:.0f} ms").format(ms=result.elapsed_ms)
        )
        wanted = self._pending_select if self._pending_select is not None else selected
        self._pending_select = None
        if wanted is not None and self.model.row_of(wanted) >= 0:
            self.select_entry(wanted)
        else:
            self._update_actions()
        emit(self.results_shown, result)

    def _on_search_error(self, message: str) -> None:
        self.count_label.setText(self.tr("Search failed"))
        emit(self.status_message, self.tr("The history could not be searched: {error}").format(
            error=message))

    # --- selection ----------------------------------------------------------------------------

    def select_entry(self, entry_id: int) -> bool:
        """Select the row of entry ``entry_id`` if it is shown."""
        row = self.model.row_of(entry_id)
        if row < 0:
            return False
        self.table.selectRow(row)
        self.table.scrollTo(self.model.index(row, 0))
        return True

    def selected_ids(self) -> list[int]:
        """Ids of every selected entry, in table order."""
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.entry(r).id for r in rows]

    def current_entry_id(self) -> int | None:
        """The entry whose details are shown (or being loaded)."""
        if self._details is not None:
            return self._details.row.id
        ids = self.selected_ids()
        return ids[0] if ids else None

    def _on_selection(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        index = self.table.currentIndex()
        ids = self.selected_ids()
        entry_id: int | None
        if index.isValid() and self.table.selectionModel().isRowSelected(index.row()):
            entry_id = self.model.entry(index.row()).id
        else:
            entry_id = ids[0] if ids else None
        self._update_actions()
        if entry_id is None or (self._details is not None and self._details.row.id == entry_id):
            return
        self.tasks.submit(load_entry_task, entry_id, on_done=self._on_entry,
                          on_error=self._on_task_error, latest="entry")
        self.tasks.submit(events_task, entry_id, on_done=self._on_events,
                          on_error=self._on_task_error, latest="events")
        self.events_label.setText(self.tr("Asking Netcore for the delivery events…"))
        self.events_table.setRowCount(0)

    def _on_entry(self, details: EntryDetails) -> None:
        if self._shut:
            return
        self._details = details
        self._events = None
        self.preview.set_recipients(details.draft, 0)
        self.preview.recipient.setEnabled(len(details.frames) > 1)
        self._show_envelope(0)
        self.request_view.setPlainText(details.request_text)
        self.answer_view.setPlainText(details.answer_text)
        self.summary_view.setPlainText(details.summary)
        links = []
        if details.original is not None:
            o = details.original
            links.append(self.tr("Resend of #{id} ({when}, {outcome}).").format(
                id=o.id, when=o.created_at.astimezone().strftime("%Y-%m-%d %H:%M"),
                outcome=o.outcome))
        if details.resends:
            links.append(self.tr("Sent again as {ids}.").format(
                ids=", ".join(f"#{r.id} ({r.outcome})" for r in details.resends)))
        self.links_label.setText(" ".join(links))
        self.links_label.setVisible(bool(links))
        self._update_actions()
        emit(self.entry_shown, details)

    def _show_envelope(self, index: int) -> None:
        details = self._details
        if details is None or not details.frames:
            return
        index = min(max(index, 0), len(details.frames) - 1)
        self.preview.show_frame(details.frames[index])
        self.preview.show_details(details.details[index])

    def _on_envelope(self, index: int) -> None:
        self._show_envelope(index)

    def _on_events(self, result: EventsResult) -> None:
        if self._shut or self._details is None or result.entry_id != self._details.row.id:
            return
        self._events = result
        lookup = result.lookup
        events = lookup.events
        self.events_table.setRowCount(len(events))
        for row, event in enumerate(events):
            when = event.time.astimezone().strftime("%Y-%m-%d %H:%M:%S") if event.time else ""
            detail = " ".join(x for x in (event.bounce_type, event.bounce_reason or
                                          event.response) if x)
            for column, text in enumerate((when, event.name, event.email, detail)):
                item = QTableWidgetItem(text)
                if column == 1 and event.raw_name != event.name:
                    item.setToolTip(self.tr("Reported as “{raw}”").format(raw=event.raw_name))
                self.events_table.setItem(row, column, item)
        if not lookup.ok:
            text = self.tr("Events could not be fetched: {why}").format(why=lookup.message)
        elif events:
            last = events[-1]
            text = self.tr("{n} event(s); the last: {name}.").format(n=len(events),
                                                                    name=last.name)
            if lookup.message:
                text += " " + lookup.message
        else:
            text = lookup.message or self.tr("No delivery events yet.")
        self.events_label.setText(text)
        self.summary_view.setPlainText(result.summary)
        emit(self.events_shown, result)

    def refresh_events(self) -> None:
        """Fetch the selected entry's delivery events again (F5)."""
        if self._details is None:
            return
        self.events_label.setText(self.tr("Asking Netcore for the delivery events…"))
        self.tasks.submit(events_task, self._details.row.id, on_done=self._on_events,
                          on_error=self._on_task_error, latest="events")

    def _on_task_error(self, message: str) -> None:
        emit(self.status_message, message)

    def _update_actions(self) -> None:
        has = self._details is not None and bool(self.selected_ids())
        for action in (self.act_open_draft, self.act_resend, self.act_resend_to,
                       self.act_copy_summary, self.act_refresh_events):
            action.setEnabled(has)
        self.act_bulk.setEnabled(bool(self.selected_ids()))

    # --- actions ------------------------------------------------------------------------------

    def open_as_draft(self) -> None:
        """Ask the window to open the selected message as a new draft."""
        if self._details is None:
            return
        draft = self._details.draft
        # A new draft: the old correlation tokens belong to the old send.
        draft = replace(draft, envelopes=tuple(replace(e, token="") for e in draft.envelopes))
        emit(self.open_draft_requested, draft)
        emit(self.status_message, self.tr("Opened history entry #{id} as a new draft.").format(
            id=self._details.row.id))

    def copy_summary(self) -> None:
        """Copy the support-ticket summary (with the last event, when fetched)."""
        if self._details is None:
            return
        text = self._events.summary if self._events is not None else self._details.summary
        QApplication.clipboard().setText(text)
        emit(self.status_message, self.tr("Copied the summary of entry #{id}.").format(
            id=self._details.row.id))

    def resend(self) -> None:
        """Resend the selected entry as it was, after confirmation (Ctrl+R)."""
        if self._details is not None:
            self._prepare_resend(self._details.row.id, None)

    def resend_to_corrected(self, address: str | None = None) -> None:
        """Resend the selected entry to a corrected address (asked for when not given)."""
        if self._details is None:
            return
        if address is None:
            current = self._details.row.recipients[0] if self._details.row.recipients else ""
            address, ok = QInputDialog.getText(
                self, self.tr("Resend to a corrected address"),
                self.tr("Send “{subject}” again to this address (it replaces the To of the "
                        "original):").format(subject=self._details.row.subject),
                QLineEdit.EchoMode.Normal, current,
            )
            if not ok:
                return
        from netcore_desktop.core.validation import email_problem

        address = address.strip()
        problem = email_problem(address)
        if problem is not None:
            QMessageBox.warning(self, self.tr("Resend"), problem)
            return
        self._prepare_resend(self._details.row.id, address)

    def _prepare_resend(self, entry_id: int, to: str | None) -> None:
        emit(self.status_message, self.tr("Preparing the resend…"))
        self.tasks.submit(prepare_resend_task, entry_id, to, on_done=self._confirm_resend,
                          on_error=self._on_resend_error)

    def confirmation_text(self, plan: ResendPlan) -> str:
        """What the confirmation box says about ``plan``."""
        parts = [
            self.tr("Send “{subject}” again to {to}?").format(
                subject=plan.subject, to=", ".join(plan.recipients[:5])
                + (self.tr(" and {n} more").format(n=len(plan.recipients) - 5)
                   if len(plan.recipients) > 5 else "")),
            self.tr("Profile “{profile}” ({mode}): {credits} credit(s).").format(
                profile=plan.profile, mode=self.tr("LIVE") if plan.live else self.tr("SANDBOX"),
                credits=plan.credits),
        ]
        if plan.original_outcome in ("sent", "queued"):
            parts.append(
                self.tr("Warning: the original was accepted by Netcore (HTTP {status}, "
                        "{when}): the customer already got it once, and will get it again.")
                .format(status=plan.original_status,
                        when=plan.original_time.astimezone().strftime("%Y-%m-%d %H:%M"))
            )
        elif plan.original_outcome == "unknown":
            parts.append(self.tr("The original's answer never arrived: it may have been "
                                 "delivered, so the customer may get it twice."))
        if plan.warnings:
            parts.append(self.tr("Please look at these warnings:"))
            parts.extend(f"• {w}" for w in plan.warnings[:6])
        parts.append(self.tr("The resend is recorded as a new entry linked to #{id}.").format(
            id=plan.entry_id))
        return "\n\n".join(parts)

    def _confirm_resend(self, plan: ResendPlan) -> None:
        if self._shut:
            self.tasks.submit(drop_resend_task, plan.key)
            return
        if plan.blocking:
            self.tasks.submit(drop_resend_task, plan.key)
            QMessageBox.warning(
                self, self.tr("Resend"),
                self.tr("It cannot be sent: {problem}").format(problem=plan.blocking[0]),
            )
            return
        box = QMessageBox(self)
        box.setObjectName("confirmResend")
        box.setIcon(QMessageBox.Icon.Warning if plan.live or plan.original_outcome in (
            "sent", "queued") else QMessageBox.Icon.Question)
        box.setWindowTitle(self.tr("Resend?"))
        box.setText(self.confirmation_text(plan))
        send = box.addButton(self.tr("Resend"), QMessageBox.ButtonRole.AcceptRole)
        send.setObjectName("confirmResendButton")
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        if box.clickedButton() is not send:
            self.tasks.submit(drop_resend_task, plan.key)
            emit(self.status_message, self.tr("Not resent."))
            return
        emit(self.status_message, self.tr("Resending…"))
        self.tasks.submit(send_resend_task, plan.key, on_done=self._on_resent,
                          on_error=self._on_resend_error)

    def _on_resent(self, done: ResendDone) -> None:
        text = done.meaning
        if done.message_id:
            text += " " + self.tr("Message id {id}.").format(id=done.message_id)
        emit(self.status_message, self.tr("Resend of #{id}: {text}").format(
            id=done.entry_id, text=text))
        emit(self.resent, done)
        if done.attempt_id is not None:
            self._pending_select = done.attempt_id
        self._details = None
        self.run_search()

    def _on_resend_error(self, message: str) -> None:
        if self._shut:
            return
        QMessageBox.warning(self, self.tr("Resend"), message)

    def _open_link(self, url: QUrl) -> None:
        if open_link(self, url):
            emit(self.status_message, self.tr("Opened {url}").format(url=url.toString()))

    def _on_bulk(self) -> None:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        entries = [self.model.entry(r) for r in rows]
        if not entries:
            return
        # A job sends with one profile: entries sent with several become one job each, so
        # that every entry goes out again through the profile (account) that sent it.
        groups: dict[str, list[EntryRow]] = {}
        for entry in entries:
            groups.setdefault(entry.profile, []).append(entry)
        if len(groups) > 1 and not self._confirm_jobs_per_profile(groups):
            emit(self.status_message, self.tr("No bulk job made."))
            return
        for group in groups.values():
            emit(self.bulk_resend_requested, [e.id for e in group])

    def _confirm_jobs_per_profile(self, groups: dict[str, list[EntryRow]]) -> bool:
        """Ask before making one bulk job per profile; True when the person agreed."""
        lines = [
            self.tr("• {n} with “{profile}”: {credits} credit(s)").format(
                n=len(group), profile=profile, credits=sum(e.credits for e in group))
            for profile, group in groups.items()
        ]
        total = sum(len(g) for g in groups.values())
        credits = sum(e.credits for g in groups.values() for e in g)
        box = QMessageBox(self)
        box.setObjectName("historyBulkPerProfile")
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle(self.tr("Resend as bulk jobs"))
        box.setText(
            self.tr("The {total} selected entries were sent with {n} different profiles. "
                    "Each goes out again through the profile that sent it, so this makes "
                    "{n} bulk jobs:").format(total=total, n=len(groups))
            + "\n\n" + "\n".join(lines) + "\n\n"
            + self.tr("About {credits} credit(s) in all. Each job opens in its own window "
                      "and sends nothing until you press Start there.").format(credits=credits)
        )
        make = box.addButton(self.tr("Make {n} jobs").format(n=len(groups)),
                             QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is make

    # --- life cycle ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the threads this browser made (the shared ones are the owner's to stop)."""
        if self._shut:
            return
        self._shut = True
        self._debounce.stop()
        if self._owns_search:
            self.search_tasks.shutdown()
        if self._owns_tasks:
            self.tasks.shutdown()
        cleanup = getattr(self.preview.renderer, "cleanup", None)
        if callable(cleanup):
            cleanup()
