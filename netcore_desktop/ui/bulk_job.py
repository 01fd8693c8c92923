"""The bulk job panel: step through the rows, start, watch, pause, resume, cancel, decide.

A job (:mod:`netcore_desktop.core.jobs`) is shown as a table of its rows with their state,
status and message id; rows whose placeholders have no value are flagged, and the preview
(the same pane the compose window uses) steps through the rows one by one before the job
starts. While it runs, a progress bar and counts (sent, queued, failed, left) follow it, and
pause, resume, cancel and the concurrency/rate settings act at once. When the job pauses by
itself (a 202 daily limit, a 401/403, a failing service) the reason is shown in a bar above
the table; rows whose answer never arrived ("unknown", e.g. after the app was killed) are
listed and the person decides: check their delivery events, send them again, or leave them.
At the end the results can be saved as a CSV file.

The job's runner works in its own threads; every database or network call of this panel
goes through the :mod:`.tasks` worker, and progress reaches the GUI thread as a queued
signal at most ten times a second, so the window never stalls while thousands of rows go out.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import (
    QT_TRANSLATE_NOOP,
    QCoreApplication,
    QItemSelection,
    QObject,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import QAction, QBrush, QColor, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from netcore_desktop.core.jobs import (
    MAX_CONCURRENCY,
    Job,
    JobKind,
    JobProgress,
    JobRow,
    JobState,
    Reason,
    RowState,
)
from netcore_desktop.core.message import Draft
from netcore_desktop.core.profiles import Profile
from netcore_desktop.ui.common import named, panel_action, set_tab_order, state_label, with_shortcut
from netcore_desktop.ui.preview import PreviewPane, open_link
from netcore_desktop.ui.qt_compat import emit
from netcore_desktop.ui.render_worker import PreviewDetails, PreviewFrame
from netcore_desktop.ui.row_model import Index, RowTableModel
from netcore_desktop.ui.tasks import SupportContext, TaskRunner

log = logging.getLogger(__name__)



# --- values from the worker -------------------------------------------------------------------


@dataclass(frozen=True)
class JobView:
    """A job with its rows, as loaded for the panel."""

    job: Job
    rows: tuple[JobRow, ...]
    #: Row number → placeholder keys with no value in that row.
    flags: dict[int, tuple[str, ...]]
    progress: JobProgress
    #: Credits of every row not sent yet.
    credits_left: int
    #: Rows of a resend job whose original was already accepted.
    already_accepted: int
    live: bool
    profile: str


@dataclass(frozen=True)
class JobSummary:
    """An unfinished job, for the start-up question."""

    job: Job
    progress: JobProgress


def also_to(template: Draft) -> str:
    """The template's Cc and Bcc that go with every row, as text ("" when none)."""
    base = template.envelopes[0] if template.envelopes else None
    cc = base.cc if base else ()
    bcc = (base.bcc if base else ()) + template.bcc
    parts = []
    if cc:
        parts.append(QCoreApplication.translate("BulkJobPanel", "Cc {addresses}").format(
            addresses=", ".join(a.display() for a in cc)))
    if bcc:
        parts.append(QCoreApplication.translate("BulkJobPanel", "Bcc {addresses}").format(
            addresses=", ".join(a.display() for a in bcc)))
    return "; ".join(parts)


# --- tasks (run in the worker thread) ----------------------------------------------------------


def _job_profile(ctx: SupportContext, job: Job, profile: Profile | None) -> Profile:
    if profile is not None:
        return profile
    try:
        return ctx.profile(job.profile)
    except KeyError:
        raise KeyError(QCoreApplication.translate(
            "BulkJobPanel", "The profile “{profile}” of this job no longer exists: add it "
            "again (Settings → Profiles) to send the rest.").format(profile=job.profile)
        ) from None


def load_job_task(ctx: SupportContext, job_id: int, profile: Profile | None) -> JobView:
    """The job, its rows, its flagged rows and what is left to pay."""
    from netcore_desktop.core.jobs import JobStore, flag_rows, row_credits
    from netcore_desktop.ui.send_worker import is_live

    store = JobStore(ctx.history())
    job = store.get(job_id)
    rows = tuple(store.rows(job_id))
    progress = store.progress(job_id)
    flags: dict[int, tuple[str, ...]] = {}
    already = 0
    left_states = (RowState.PENDING, RowState.UNKNOWN, RowState.FAILED)
    if job.draft is not None:
        flags = flag_rows(job.draft, rows)
        # Each row's To, plus the template's Cc and Bcc that go with every row.
        credits = row_credits(job.draft, (r for r in rows if r.state in left_states))
    else:
        credits = 0
        history = ctx.history()
        for r in rows:
            if r.source_attempt is None:
                continue
            try:
                entry = history.get(r.source_attempt)
            except KeyError:
                continue
            if r.state in left_states:
                credits += entry.credits
            if entry.outcome.accepted:
                already += 1
    try:
        live = is_live(_job_profile(ctx, job, profile))
    except KeyError:
        live = True  # unknown profile: assume the worst when warning
    return JobView(job, rows, flags, progress, credits, already, live,
                   profile.name if profile is not None else job.profile)


def row_preview_task(ctx: SupportContext, job: Job, row: JobRow,
                     cache: dict[str, Any]) -> tuple[PreviewFrame, PreviewDetails]:
    """One row's message as its recipient will see it (or saw it, for a resend job)."""
    from netcore_desktop.core.jobs import preview_row
    from netcore_desktop.core.render import html_to_text, remote_urls, render_html

    started = time.perf_counter()
    if job.draft is not None:
        html = cache.get("html")
        if html is None:
            html = cache["html"] = render_html(job.draft)
        shown = preview_row(job.draft, row, rendered=html)
        frame = PreviewFrame(
            generation=row.row, envelope=0, html=shown.html, subject=shown.subject,
            sender=job.draft.sender.display(), to=shown.to,
            sent_bytes=len(html.encode("utf-8")), remote_count=len(remote_urls(shown.html)),
            render_ms=(time.perf_counter() - started) * 1000, created=started,
        )
        missing = ", ".join(f"[%{k}%]" for k in shown.missing)
        headers = (
            f"To: {shown.to}\n"
            + (f"Cc: {shown.cc}\n" if shown.cc else "")
            + (f"Bcc: {shown.bcc}\n" if shown.bcc else "")
            + f"Subject: {shown.subject}\nX-APIHEADER: {row.token}\n"
            + (QCoreApplication.translate(
                "BulkJobPanel", "\nUnfilled placeholders: {keys} (sent as they are)\n"
            ).format(keys=missing) if missing else "")
        )
        details = PreviewDetails(
            generation=row.row, text=html_to_text(shown.html),
            request_json="\n".join(f"{k}: {v}" for k, v in row.attributes.items()),
            headers=headers, problems=(), credits=shown.credits,
        )
        return frame, details
    from netcore_desktop.ui.history_browser import load_entry_task

    if row.source_attempt is None:
        raise KeyError(QCoreApplication.translate(
            "BulkJobPanel", "Row {row} has no history entry.").format(row=row.row))
    entry = load_entry_task(ctx, row.source_attempt)
    frame = replace(entry.frames[0], generation=row.row)
    details = replace(entry.details[0], generation=row.row)
    return frame, details


class JobBridge(QObject):
    """Carries a runner's callbacks (from its threads) to the GUI thread as signals."""

    #: A :class:`JobProgress` (queued to the GUI thread).
    progressed = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._rows: collections.deque[JobRow] = collections.deque()

    def on_progress(self, progress: JobProgress) -> None:
        """The runner's progress callback (any thread)."""
        emit(self.progressed, progress)

    def on_row(self, row: JobRow) -> None:
        """The runner's row callback (any worker thread): kept until the next progress."""
        with self._lock:
            self._rows.append(row)

    def take_rows(self) -> list[JobRow]:
        """Rows that changed since the last call (GUI thread)."""
        with self._lock:
            rows = list(self._rows)
            self._rows.clear()
        return rows


def start_job_task(ctx: SupportContext, job_id: int, profile: Profile | None,
                   concurrency: int, rate: float | None, bridge: JobBridge,
                   skip: tuple[int, ...]) -> Any:
    """Start (or resume) the job's runner; returns it (its methods are thread-safe)."""
    from netcore_desktop.core.jobs import JobRunner, JobStore

    store = JobStore(ctx.history())
    job = store.get(job_id)
    if skip:
        store.skip_rows(job_id, skip, QCoreApplication.translate(
            "BulkJobPanel", "Skipped: it has placeholders with no value."))
    service = ctx.service(_job_profile(ctx, job, profile))
    runner = JobRunner(service, job_id, on_progress=bridge.on_progress, on_row=bridge.on_row,
                       concurrency=concurrency, rate_per_s=rate or None)
    runner.start()
    ctx.kept[("runner", job_id)] = runner
    return runner


def call_runner_task(ctx: SupportContext, runner: Any, method: str, *args: Any) -> None:
    """Call a runner method that writes to the database (pause, resume, settings…)."""
    getattr(runner, method)(*args)


def settings_task(ctx: SupportContext, job_id: int, concurrency: int, rate: float | None
                  ) -> None:
    """Keep the job's speed settings for its next run."""
    from netcore_desktop.core.jobs import JobStore

    store = JobStore(ctx.history())
    store.set_concurrency(job_id, concurrency)
    store.set_rate(job_id, rate or None)


def decide_task(ctx: SupportContext, job_id: int, action: str, profile: Profile | None) -> str:
    """Act on the unknown or failed rows; returns a sentence for the status bar."""
    from netcore_desktop.core.jobs import JobStore, reconcile_unknown

    store = JobStore(ctx.history())
    if action == "check":
        service = ctx.service(_job_profile(ctx, store.get(job_id), profile))
        before = len(store.rows(job_id, [RowState.UNKNOWN]))
        confirmed = reconcile_unknown(store, service.client(), job_id)
        return QCoreApplication.translate(
            "BulkJobPanel", "Delivery events confirmed {confirmed} of {before} unknown row(s) "
            "as sent; {left} stay unknown.").format(
            confirmed=confirmed, before=before, left=before - confirmed)
    if action == "retry":
        n = store.retry_rows(job_id)
        return QCoreApplication.translate(
            "BulkJobPanel", "{n} failed row(s) will be sent again (with new tokens).").format(n=n)
    n = store.resolve_unknown(job_id, None, action)
    if action == "resend":
        return QCoreApplication.translate(
            "BulkJobPanel", "{n} unknown row(s) will be sent again (with new tokens).").format(
            n=n)
    return QCoreApplication.translate(
        "BulkJobPanel", "{n} unknown row(s) left as they are.").format(n=n)


def cancel_job_task(ctx: SupportContext, job_id: int) -> None:
    """Cancel a job no runner is running."""
    from netcore_desktop.core.jobs import JobStore

    JobStore(ctx.history()).cancel_job(job_id)


def results_task(ctx: SupportContext, job_id: int, path: str) -> int:
    """Write the results CSV; returns the number of rows written."""
    from netcore_desktop.core.jobs import JobStore

    return JobStore(ctx.history()).write_results_csv(job_id, Path(path))


def recover_task(ctx: SupportContext) -> list[JobSummary]:
    """Make jobs of a process that died resumable; list every job still to finish."""
    from netcore_desktop.core.jobs import JobStore

    store = JobStore(ctx.history())
    store.recover()
    return [JobSummary(job, store.progress(job.id)) for job in store.unfinished()]


def stop_runner_task(ctx: SupportContext, runner: Any) -> None:
    """Stop a runner (it leaves the job resumable)."""
    runner.stop(30.0)


# --- the rows table ---------------------------------------------------------------------------

COLUMNS: Final = ("row", "line", "to", "name", "state", "status", "message_id", "check",
                  "error")

_STATE_COLOURS: Final = {
    "sent": "#1a7f37",
    "queued": "#9a6700",
    "pending": "#59636e",
    "sending": "#0969da",
    "skipped": "#59636e",
    "cancelled": "#59636e",
}
_FLAG_BACKGROUND: Final = "#fff8c5"

#: Role giving the row's :class:`JobRow`.
ROW_ROLE: Final = Qt.ItemDataRole.UserRole + 1


class JobRowsModel(RowTableModel[JobRow]):
    """The rows of one job."""

    columns = COLUMNS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._flags: dict[int, tuple[str, ...]] = {}
        self._titles = {
            "row": self.tr("#"), "line": self.tr("Line"), "to": self.tr("To"),
            "name": self.tr("Name / subject"), "state": self.tr("State"),
            "status": self.tr("Status"), "message_id": self.tr("Message id"),
            "check": self.tr("Check"), "error": self.tr("Answer"),
        }

    def set_rows(self, rows: tuple[JobRow, ...], flags: dict[int, tuple[str, ...]]) -> None:
        """Show these rows."""
        self.beginResetModel()
        self._rows = list(rows)
        self._flags = dict(flags)
        self.endResetModel()

    def update_rows(self, rows: list[JobRow]) -> None:
        """Rows whose state changed."""
        for row in rows:
            index = row.row - 1  # rows are numbered 1..n in order
            if 0 <= index < len(self._rows) and self._rows[index].row == row.row:
                self._rows[index] = row
                emit(self.dataChanged, self.index(index, 0),
                     self.index(index, len(COLUMNS) - 1))

    def row_at(self, index: int) -> JobRow:
        """The job row shown at ``index``."""
        return self._rows[index]

    def flags_of(self, number: int) -> tuple[str, ...]:
        """Unfilled placeholder keys of row ``number``."""
        return self._flags.get(number, ())

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Cell text, state colours, and flagged rows tinted."""
        cell = self._cell(index)
        if cell is None:
            return None
        row, column = cell
        if role == ROW_ROLE:
            return row
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._text(row, column)
        if role == Qt.ItemDataRole.ForegroundRole and column == "state":
            return QBrush(QColor(_STATE_COLOURS.get(str(row.state), "#cf222e")))
        if (role == Qt.ItemDataRole.BackgroundRole and row.row in self._flags
                and row.state is RowState.PENDING):
            return QBrush(QColor(_FLAG_BACKGROUND))
        return None

    def _text(self, row: JobRow, column: str) -> str:
        if column == "row":
            return str(row.row)
        if column == "line":
            return "" if row.line is None else str(row.line)
        if column == "to":
            return row.email
        if column == "name":
            return row.name
        if column == "state":
            return state_label(row.state)
        if column == "status":
            return "" if row.status_code is None else str(row.status_code)
        if column == "message_id":
            return row.message_id
        if column == "check":
            missing = self._flags.get(row.row)
            if missing:
                return self.tr("⚠ no value for {keys}").format(
                    keys=", ".join(f"[%{k}%]" for k in missing))
            return ""
        if column == "error":
            return row.error
        return ""


#: Row filter choices: label → states (``None``: flagged rows). The labels are marked for
#: the translation extractor here and translated where the filter box is filled.
_FILTERS: Final = (
    (QT_TRANSLATE_NOOP("BulkJobPanel", "All rows"), ()),
    (QT_TRANSLATE_NOOP("BulkJobPanel", "Flagged (unfilled placeholders)"), None),
    (QT_TRANSLATE_NOOP("BulkJobPanel", "Unknown (answer never arrived)"), ("unknown",)),
    (QT_TRANSLATE_NOOP("BulkJobPanel", "Failed or refused"), ("failed", "refused")),
    (QT_TRANSLATE_NOOP("BulkJobPanel", "Not sent yet"), ("pending", "sending")),
    (QT_TRANSLATE_NOOP("BulkJobPanel", "Sent or queued"), ("sent", "queued")),
)


class JobRowsFilter(QSortFilterProxyModel):
    """Shows all rows, or only those in some states, or only flagged rows."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._states: tuple[str, ...] | None = ()

    def set_states(self, states: tuple[str, ...] | None) -> None:
        """``()`` for every row, ``None`` for flagged rows, else these states."""
        begin = getattr(self, "beginFilterChange", None)
        if begin is None:  # Qt before 6.9
            self._states = states
            self.invalidateFilter()
            return
        begin()
        self._states = states
        self.endFilterChange()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        """Whether the row is shown."""
        model = self.sourceModel()
        if not isinstance(model, JobRowsModel) or self._states == ():
            return True
        row = model.row_at(source_row)
        if self._states is None:
            return bool(model.flags_of(row.row))
        return str(row.state) in self._states


# --- the panel --------------------------------------------------------------------------------


class BulkJobPanel(QWidget):
    """One bulk job: its rows, preview, controls and progress."""

    #: The job changed state (its :class:`JobProgress`).
    state_changed = Signal(object)
    #: Text for the status bar.
    status_message = Signal(str)
    #: The job was loaded (its :class:`JobView`).
    loaded = Signal(object)
    #: The key was refused and the person chose to fix it (open the profiles).
    profiles_requested = Signal()

    def __init__(self, tasks: TaskRunner | None = None, *,
                 service_factory: Callable[[Profile], Any] | None = None,
                 history_path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "bulkJobPanel", self.tr("Bulk job"))
        self._owns_tasks = tasks is None
        self.tasks = tasks or TaskRunner(
            SupportContext(history_path, service_factory=service_factory),
            name="bulk-worker", parent=self,
        )
        self.bridge = JobBridge(self)
        self._view: JobView | None = None
        self._profile: Profile | None = None
        self._runner: Any = None
        self._state: JobState | None = None
        self._preview_cache: dict[str, Any] = {}
        self._shown_once = False
        self._shut = False
        self._saving = ""
        #: Whether the job is being loaded.
        self.loading = False
        #: The last progress shown.
        self.last_progress: JobProgress | None = None
        #: Progress signals handled (for the benchmark and tests).
        self.progress_updates = 0

        # --- header and reason bar ----------------------------------------------------------------
        self.title_label = named(QLabel(self.tr("No job")), "bulkJobTitle", self.tr("Job"))
        self.title_label.setProperty("role", "paneTitle")
        self.info_label = named(QLabel(), "bulkJobInfo", self.tr("Job details"))
        self.info_label.setProperty("role", "hint")
        self.reason_bar = QFrame()
        self.reason_bar.setObjectName("bulkJobReasonBar")
        self.reason_bar.setProperty("role", "infoBar")
        self.reason_label = named(QLabel(), "bulkJobReason", self.tr("Why the job stopped"))
        self.reason_label.setWordWrap(True)
        reason_layout = QHBoxLayout(self.reason_bar)
        reason_layout.setContentsMargins(8, 4, 8, 4)
        reason_layout.addWidget(self.reason_label, 1)
        self.reason_bar.setVisible(False)

        # --- the decisions about unknown and failed rows ------------------------------------------
        self.unknown_bar = QFrame()
        self.unknown_bar.setObjectName("bulkJobUnknownBar")
        self.unknown_bar.setProperty("role", "warningBar")
        self.unknown_label = named(QLabel(), "bulkJobUnknownLabel", self.tr("Unknown rows"))
        self.unknown_label.setWordWrap(True)
        self.check_button = named(
            QPushButton(self.tr("Check delivery events")), "bulkJobCheckUnknown",
            self.tr("Check the unknown rows' delivery events"),
            self.tr("Ask Netcore whether the unknown rows arrived; those that did are marked "
                    "sent"),
        )
        self.resend_unknown_button = named(
            QPushButton(self.tr("Send them again…")), "bulkJobResendUnknown",
            self.tr("Send the unknown rows again"),
            self.tr("Send the unknown rows again with new tokens (they may arrive twice)"),
        )
        self.leave_unknown_button = named(
            QPushButton(self.tr("Leave them")), "bulkJobLeaveUnknown",
            self.tr("Leave the unknown rows"),
            self.tr("Do not send the unknown rows again (they may have been delivered)"),
        )
        unknown_layout = QHBoxLayout(self.unknown_bar)
        unknown_layout.setContentsMargins(8, 4, 8, 4)
        unknown_layout.addWidget(self.unknown_label, 1)
        for button in (self.check_button, self.resend_unknown_button, self.leave_unknown_button):
            unknown_layout.addWidget(button)
        self.unknown_bar.setVisible(False)

        # --- controls -----------------------------------------------------------------------------
        self.act_start = self._action("bulkJobStartAction", self.tr("Start"), "Ctrl+Return",
                                      self.tr("Start sending the job's rows"), "send")
        self.act_pause = self._action("bulkJobPauseAction", self.tr("Pause"), "Ctrl+P",
                                      self.tr("Stop taking new rows; rows on the way finish"))
        self.act_resume = self._action("bulkJobResumeAction", self.tr("Resume"),
                                       "Ctrl+Shift+P", self.tr("Go on sending the rows left"),
                                       "send")
        self.act_cancel = self._action("bulkJobCancelAction", self.tr("Cancel job"),
                                       "Ctrl+.", self.tr("Stop for good: rows not sent yet "
                                                         "are cancelled"), "cancel")
        self.act_retry = self._action("bulkJobRetryAction", self.tr("Retry failed rows"),
                                      "Ctrl+Shift+T",
                                      self.tr("Send the failed rows again with new tokens"))
        self.act_save = self._action("bulkJobSaveAction", self.tr("Save results…"), "Ctrl+S",
                                     self.tr("Save one line per row (state, status, message "
                                             "id, token, error) as a CSV file"), "save")
        self.act_prev = self._action("bulkJobPreviousAction", self.tr("Previous row"),
                                     "Alt+Up", self.tr("Preview the previous row"))
        self.act_next = self._action("bulkJobNextAction", self.tr("Next row"), "Alt+Down",
                                     self.tr("Preview the next row"))
        self.act_next_flagged = self._action(
            "bulkJobNextFlaggedAction", self.tr("Next flagged row"), "Ctrl+G",
            self.tr("Preview the next row with unfilled placeholders"), "warning",
        )

        def button_for(action: QAction, name: str) -> QPushButton:
            button = named(QPushButton(action.icon(), action.text()), name, action.text(),
                           action.toolTip())
            button.clicked.connect(action.trigger)
            action.changed.connect(lambda b=button, a=action: b.setEnabled(a.isEnabled()))
            button.setEnabled(action.isEnabled())
            return button

        self.start_button = button_for(self.act_start, "bulkJobStart")
        self.pause_button = button_for(self.act_pause, "bulkJobPause")
        self.resume_button = button_for(self.act_resume, "bulkJobResume")
        self.cancel_button = button_for(self.act_cancel, "bulkJobCancel")
        self.retry_button = button_for(self.act_retry, "bulkJobRetry")
        self.save_button = button_for(self.act_save, "bulkJobSave")
        self.prev_button = button_for(self.act_prev, "bulkJobPrevious")
        self.next_button = button_for(self.act_next, "bulkJobNext")
        self.next_flagged_button = button_for(self.act_next_flagged, "bulkJobNextFlagged")
        self.concurrency = named(
            QSpinBox(), "bulkJobConcurrency", self.tr("Rows sent at once"),
            self.tr("How many rows are sent at the same time (1 to {n})").format(
                n=MAX_CONCURRENCY),
        )
        self.concurrency.setRange(1, MAX_CONCURRENCY)
        self.concurrency.setValue(4)
        self.rate = named(
            QDoubleSpinBox(), "bulkJobRate", self.tr("Rows per second at most"),
            self.tr("Send at most this many rows a second (0: as fast as allowed)"),
        )
        self.rate.setRange(0.0, 1000.0)
        self.rate.setDecimals(1)
        self.rate.setSpecialValueText(self.tr("no limit"))
        concurrency_label = QLabel(self.tr("At &once"))
        concurrency_label.setBuddy(self.concurrency)
        rate_label = QLabel(self.tr("&Rate"))
        rate_label.setBuddy(self.rate)
        controls = QHBoxLayout()
        for widget in (self.start_button, self.pause_button, self.resume_button,
                       self.cancel_button, self.retry_button):
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(concurrency_label)
        controls.addWidget(self.concurrency)
        controls.addWidget(rate_label)
        controls.addWidget(self.rate)
        controls.addWidget(self.save_button)

        self.progress_bar = named(QProgressBar(), "bulkJobProgress", self.tr("Job progress"),
                                  self.tr("Rows done out of all rows"))
        self.progress_bar.setFormat(self.tr("%v of %m rows"))
        self.counts_label = named(QLabel(), "bulkJobCounts",
                                  self.tr("Rows sent, queued, failed and left"))

        # --- rows and preview ---------------------------------------------------------------------
        self.model = JobRowsModel(self)
        self.proxy = JobRowsFilter(self)
        self.proxy.setSourceModel(self.model)
        self.filter = named(QComboBox(), "bulkJobFilter", self.tr("Rows to show"),
                            self.tr("Show every row, or only some"))
        for index, (label, _states) in enumerate(_FILTERS):
            self.filter.addItem(QCoreApplication.translate("BulkJobPanel", str(label)), index)
        self.flag_label = named(QLabel(), "bulkJobFlags", self.tr("Flagged rows"))
        self.flag_label.setProperty("role", "hint")
        self.table = named(QTableView(), "bulkJobRows", self.tr("Rows of the job"),
                           self.tr("One row per recipient; select one to preview it"))
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.setTabKeyNavigation(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        widths = {"row": 50, "line": 50, "to": 200, "name": 140, "state": 80, "status": 56,
                  "message_id": 230, "check": 180, "error": 200}
        for i, column in enumerate(COLUMNS):
            header.resizeSection(i, widths[column])
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.preview = PreviewPane()
        self.preview.setObjectName("bulkJobPreview")
        self.preview.setAccessibleName(self.tr("Preview of the selected row"))
        # A link in the message opens outside after a question, as in the compose preview.
        self.preview.link_requested.connect(self._open_link)
        # The pane's recipient chooser is replaced by the rows table and previous/next.
        self.preview.recipient.setVisible(False)
        for buddy_label in self.preview.findChildren(QLabel):
            if buddy_label.buddy() is self.preview.recipient:
                buddy_label.setVisible(False)
        self.row_label = named(QLabel(), "bulkJobRowLabel", self.tr("Row shown"))

        rows_box = QWidget()
        rows_layout = QVBoxLayout(rows_box)
        rows_layout.setContentsMargins(0, 0, 0, 0)
        filter_row = QHBoxLayout()
        show_label = QLabel(self.tr("S&how"))
        show_label.setBuddy(self.filter)
        filter_row.addWidget(show_label)
        filter_row.addWidget(self.filter)
        filter_row.addWidget(self.flag_label, 1)
        rows_layout.addLayout(filter_row)
        rows_layout.addWidget(self.table, 1)
        preview_box = QWidget()
        preview_layout = QVBoxLayout(preview_box)
        preview_layout.setContentsMargins(0, 0, 0, 0)
        stepper = QHBoxLayout()
        stepper.addWidget(self.prev_button)
        stepper.addWidget(self.next_button)
        stepper.addWidget(self.next_flagged_button)
        stepper.addWidget(self.row_label, 1)
        preview_layout.addLayout(stepper)
        preview_layout.addWidget(self.preview, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("bulkJobSplitter")
        self.splitter.addWidget(rows_box)
        self.splitter.addWidget(preview_box)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setChildrenCollapsible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(self.title_label)
        layout.addWidget(self.info_label)
        layout.addWidget(self.reason_bar)
        layout.addWidget(self.unknown_bar)
        layout.addLayout(controls)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.counts_label)
        layout.addWidget(self.splitter, 1)

        # --- behaviour ----------------------------------------------------------------------------
        self.bridge.progressed.connect(self._on_progress)
        self.act_start.triggered.connect(self._on_start)
        self.act_pause.triggered.connect(self.pause)
        self.act_resume.triggered.connect(self.resume)
        self.act_cancel.triggered.connect(self.cancel)
        self.act_retry.triggered.connect(self.retry_failed)
        self.act_save.triggered.connect(self.save_results)
        self.act_prev.triggered.connect(lambda: self._step(-1))
        self.act_next.triggered.connect(lambda: self._step(1))
        self.act_next_flagged.triggered.connect(self._next_flagged)
        self.check_button.clicked.connect(self.check_unknown)
        self.resend_unknown_button.clicked.connect(self.resend_unknown)
        self.leave_unknown_button.clicked.connect(self.leave_unknown)
        self.filter.currentIndexChanged.connect(self._on_filter)
        self.concurrency.valueChanged.connect(self._on_speed)
        self.rate.valueChanged.connect(self._on_speed)
        self.table.selectionModel().selectionChanged.connect(self._on_selection)
        self._speed_timer = QTimer(self)
        self._speed_timer.setSingleShot(True)
        self._speed_timer.setInterval(300)
        self._speed_timer.timeout.connect(self._apply_speed)
        set_tab_order(
            self.start_button, self.pause_button, self.resume_button, self.cancel_button,
            self.retry_button, self.concurrency, self.rate, self.save_button, self.filter,
            self.table, self.prev_button, self.next_button, self.next_flagged_button,
            self.preview,
        )
        self._update_controls()

    def _action(self, name: str, text: str, shortcut: str, tip: str, icon_name: str = ""
                ) -> QAction:
        return panel_action(self, name, text, shortcut, tip, icon_name)

    def showEvent(self, event: QShowEvent) -> None:
        """Create the preview's web view once the panel is on screen."""
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            QTimer.singleShot(0, self._after_first_show)

    def _after_first_show(self) -> None:
        if not self._shut:
            self.preview.create_web_view()

    # --- loading ------------------------------------------------------------------------------

    @property
    def job_id(self) -> int | None:
        """The job shown."""
        return self._view.job.id if self._view is not None else None

    @property
    def running(self) -> bool:
        """Whether this panel's runner is running the job."""
        return self._runner is not None and bool(self._runner.running)

    def open_job(self, job_id: int, *, profile: Profile | None = None) -> None:
        """Show job ``job_id`` (loaded in the worker). ``profile`` overrides the saved one."""
        self._profile = profile
        self.loading = True
        self._preview_cache = {}
        self.tasks.submit(load_job_task, job_id, profile, on_done=self._on_loaded,
                          on_error=self._on_error)

    def reload(self) -> None:
        """Load the shown job's rows again."""
        if self._view is not None:
            self.loading = True
            self.tasks.submit(load_job_task, self._view.job.id, self._profile,
                              on_done=self._on_loaded, on_error=self._on_error)

    def _on_loaded(self, view: JobView) -> None:
        if self._shut:
            return
        first_load = self._view is None or self._view.job.id != view.job.id
        self._view = view
        self.loading = False
        job = view.job
        selected = self._selected_row_number()
        self.model.set_rows(view.rows, view.flags)
        self.title_label.setText(self.tr("Bulk job #{id}: {label}").format(
            id=job.id, label=job.label))
        kind = (self.tr("resend of {n} history entries").format(n=len(view.rows))
                if job.kind is JobKind.RESEND else
                self.tr("{n} recipients").format(n=len(view.rows)))
        source = f" · {job.source}" if job.source and job.kind is JobKind.DRAFT else ""
        self.info_label.setText(self.tr("{kind}{source} · profile “{profile}” ({mode})").format(
            kind=kind, source=source, profile=view.profile,
            mode=self.tr("LIVE") if view.live else self.tr("SANDBOX")))
        flagged = sum(1 for r in view.rows if r.row in view.flags
                      and r.state is RowState.PENDING)
        self.flag_label.setText(
            self.tr("⚠ {n} row(s) have placeholders with no value").format(n=flagged)
            if flagged else "")
        if first_load:
            self.concurrency.blockSignals(True)
            self.concurrency.setValue(job.concurrency)
            self.concurrency.blockSignals(False)
            self.rate.blockSignals(True)
            self.rate.setValue(job.rate_per_s or 0.0)
            self.rate.blockSignals(False)
        if not self.running:
            self._show_progress(view.progress)
        if view.progress.unknown and first_load:
            self.filter.setCurrentIndex(2)  # the unknown rows: a decision is needed
        if self.model.rowCount():
            self._select_number(selected if selected is not None else 1)
        emit(self.loaded, view)

    def _on_error(self, message: str) -> None:
        self.loading = False
        if self._shut:
            return
        emit(self.status_message, message)
        QMessageBox.warning(self, self.tr("Bulk job"), message)

    # --- progress -----------------------------------------------------------------------------

    @Slot(object)
    def _on_progress(self, progress: JobProgress) -> None:
        if self._shut or self._view is None or progress.job_id != self._view.job.id:
            return
        self.progress_updates += 1
        changed = self.bridge.take_rows()
        if changed:
            self.model.update_rows(changed)
        self._show_progress(progress)
        if progress.state in (JobState.FINISHED, JobState.CANCELLED):
            # The runner is ending: its last word is this one.
            self._runner = None
            self._update_controls()
            self.reload()
        elif progress.state is JobState.PAUSED and not self.running:
            self._runner = None
            self.reload()

    def _show_progress(self, progress: JobProgress) -> None:
        state_changed = progress.state is not self._state or (
            self.last_progress is not None and self.last_progress.reason != progress.reason
        )
        self.last_progress = progress
        self._state = progress.state
        self.progress_bar.setMaximum(max(progress.total, 1))
        self.progress_bar.setValue(progress.done)
        parts = [
            self.tr("Sent {n}").format(n=progress.sent),
            self.tr("Queued {n}").format(n=progress.queued),
            self.tr("Failed {n}").format(n=progress.failed),
            self.tr("Left {n}").format(n=progress.left),
        ]
        if progress.unknown:
            parts.append(self.tr("Unknown {n}").format(n=progress.unknown))
        if progress.skipped:
            parts.append(self.tr("Skipped {n}").format(n=progress.skipped))
        text = " · ".join(parts)
        if progress.rate > 0 and progress.state is JobState.RUNNING:
            text += self.tr(" · {rate:.0f} rows/s").format(rate=progress.rate)
        self.counts_label.setText(text)
        if progress.state is JobState.PAUSED and progress.reason:
            self.reason_label.setText(self._reason_text(progress))
            self.reason_bar.setVisible(True)
        elif progress.state is JobState.CANCELLED:
            self.reason_label.setText(self.tr("Cancelled: rows not sent were cancelled."))
            self.reason_bar.setVisible(True)
        elif progress.state is JobState.FINISHED:
            self.reason_label.setText(self.tr("Finished: {text}").format(
                text=progress.describe()))
            self.reason_bar.setVisible(True)
        else:
            self.reason_bar.setVisible(False)
        unknown = progress.unknown
        self.unknown_bar.setVisible(bool(unknown) and progress.state is not JobState.RUNNING)
        if unknown:
            self.unknown_label.setText(self.tr(
                "{n} row(s) are unknown: their request went out but no answer came (or the app "
                "stopped meanwhile), so they may have been delivered. They are never sent "
                "again unless you say so.").format(n=unknown))
        self._update_controls()
        if state_changed:
            emit(self.state_changed, progress)
            if progress.state is JobState.PAUSED and progress.reason_code in (
                Reason.AUTH, Reason.DAILY_LIMIT, Reason.SETUP, Reason.CHECKS, Reason.FAILING
            ):
                emit(self.status_message, progress.reason)
            if (progress.state is JobState.PAUSED and progress.reason_code in (
                    Reason.AUTH, Reason.SETUP) and self.isVisible()):
                # Stop and ask: nothing more can go out until the key or profile is fixed.
                QTimer.singleShot(0, self._ask_about_key)

    def _ask_about_key(self) -> None:
        progress = self.last_progress
        if self._shut or progress is None or progress.state is not JobState.PAUSED:
            return
        box = QMessageBox(self)
        box.setObjectName("bulkJobKeyRefused")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle(self.tr("The job stopped"))
        box.setText(self.tr("{reason}\n\nNo row was refused for good: the rows wait. Open the "
                            "profiles to fix the key, then press Resume.").format(
            reason=progress.reason))
        fix = box.addButton(self.tr("Open profiles…"), QMessageBox.ButtonRole.AcceptRole)
        box.addButton(self.tr("Later"), QMessageBox.ButtonRole.RejectRole)
        box.exec()
        if box.clickedButton() is fix:
            emit(self.profiles_requested)

    def _reason_text(self, progress: JobProgress) -> str:
        prefix = {
            str(Reason.PAUSED): self.tr("Paused."),
            str(Reason.DAILY_LIMIT): self.tr("Paused: daily limit."),
            str(Reason.AUTH): self.tr("Stopped: the key was refused."),
            str(Reason.FAILING): self.tr("Paused: the service keeps failing."),
            str(Reason.INTERRUPTED): self.tr("Interrupted."),
            str(Reason.CHECKS): self.tr("Not started: the message has problems."),
            str(Reason.SETUP): self.tr("Stopped: sending could not start."),
        }.get(progress.reason_code, self.tr("Paused."))
        if progress.reason == "Paused.":
            return prefix
        return f"{prefix} {progress.reason}"

    def _update_controls(self) -> None:
        progress = self.last_progress
        has_job = self._view is not None
        running = self.running and progress is not None and progress.state is JobState.RUNNING
        state = progress.state if progress is not None else None
        left = progress.left if progress is not None else 0
        resumable = has_job and not self.running and state in (
            JobState.PAUSED, JobState.RUNNING) and left > 0
        self.act_start.setEnabled(has_job and not self.running and state in (
            JobState.READY, JobState.FINISHED) and left > 0)
        self.act_pause.setEnabled(running)
        self.act_resume.setEnabled(
            resumable or (self.running and state is JobState.PAUSED)
        )
        self.act_cancel.setEnabled(has_job and state not in (JobState.FINISHED,
                                                             JobState.CANCELLED, None))
        self.act_retry.setEnabled(has_job and not running and progress is not None
                                  and progress.count(RowState.FAILED) > 0
                                  and state is not JobState.CANCELLED)
        self.act_save.setEnabled(has_job)
        for button in (self.check_button, self.resend_unknown_button, self.leave_unknown_button):
            button.setEnabled(has_job and not running)

    # --- starting and steering ----------------------------------------------------------------

    def _on_start(self) -> None:
        self.start_job()

    def _open_link(self, url: QUrl) -> None:
        if open_link(self, url):
            emit(self.status_message, self.tr("Opened {url}").format(url=url.toString()))

    def start_job(self, *, confirm: bool = True) -> bool:
        """Start (or resume after a restart) the job, asking first unless ``confirm`` is off."""
        view = self._view
        if view is None or self.running:
            return False
        skip: tuple[int, ...] = ()
        if confirm:
            answer = self._confirm_start(view)
            if answer is None:
                return False
            skip = answer
        self._runner = None
        self.tasks.submit(
            start_job_task, view.job.id, self._profile, self.concurrency.value(),
            self.rate.value() or None, self.bridge, skip,
            on_done=self._on_started, on_error=self._on_error,
        )
        emit(self.status_message, self.tr("Starting bulk job #{id}…").format(id=view.job.id))
        return True

    def _confirm_start(self, view: JobView) -> tuple[int, ...] | None:
        """Ask before sending; returns the rows to skip, or ``None`` when not confirmed."""
        progress = view.progress
        pending = [r for r in view.rows if r.state is RowState.PENDING]
        flagged = [r.row for r in pending if r.row in view.flags]
        parts = [
            self.tr("Send {n} message(s) with profile “{profile}” ({mode})? They cost about "
                    "{credits} credit(s).").format(
                n=len(pending), profile=view.profile,
                mode=self.tr("LIVE") if view.live else self.tr("SANDBOX"),
                credits=view.credits_left),
        ]
        also = also_to(view.job.draft) if view.job.draft is not None else ""
        if also:
            parts.append(self.tr("Every message also goes to {also}.").format(also=also))
        if progress.sent or progress.queued:
            parts.append(self.tr("{n} row(s) were sent already and are not sent again.").format(
                n=progress.sent + progress.queued))
        if progress.unknown:
            parts.append(self.tr("{n} unknown row(s) are not sent (decide about them with the "
                                 "buttons above the table).").format(n=progress.unknown))
        if view.already_accepted:
            parts.append(self.tr("{n} of these messages were accepted before: those customers "
                                 "get them again.").format(n=view.already_accepted))
        if flagged:
            keys = sorted({k for r in flagged for k in view.flags[r]})
            parts.append(self.tr(
                "{n} row(s) have placeholders with no value ({keys}): Netcore would send them "
                "as they are, e.g. “Hi [%{first}%]”.").format(
                n=len(flagged), keys=", ".join(f"[%{k}%]" for k in keys), first=keys[0]))
        box = QMessageBox(self)
        box.setObjectName("confirmBulkStart")
        box.setIcon(QMessageBox.Icon.Warning if view.live or flagged else
                    QMessageBox.Icon.Question)
        box.setWindowTitle(self.tr("Start the bulk job?"))
        box.setText("\n\n".join(parts))
        skip_button = None
        if flagged:
            skip_button = box.addButton(self.tr("Skip flagged rows and send"),
                                        QMessageBox.ButtonRole.AcceptRole)
            send = box.addButton(self.tr("Send all, as they are"),
                                 QMessageBox.ButtonRole.DestructiveRole)
        else:
            send = box.addButton(self.tr("Send"), QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        if skip_button is not None and clicked is skip_button:
            return tuple(flagged)
        if clicked is send:
            return ()
        return None

    def _on_started(self, runner: Any) -> None:
        self._runner = runner
        if self._shut:
            runner.stop(0)
            return
        self._update_controls()
        # Rows skipped at the start (and rows put back by a decision) show at once.
        self.reload()

    def pause(self) -> None:
        """Pause the job (rows on the way finish)."""
        if self._runner is not None:
            self.tasks.submit(call_runner_task, self._runner, "pause", "Paused.")

    def resume(self) -> None:
        """Resume: the running runner goes on, or a new one starts for a stopped job."""
        if self._runner is not None and self._runner.running:
            self.tasks.submit(call_runner_task, self._runner, "resume")
        else:
            self.start_job(confirm=True)

    def cancel(self) -> None:
        """Cancel the job after confirmation: rows not sent yet are cancelled."""
        view = self._view
        if view is None:
            return
        answer = QMessageBox.question(
            self, self.tr("Cancel the job?"),
            self.tr("Stop job #{id} for good? Rows not sent yet are cancelled (rows on the way "
                    "finish).").format(id=view.job.id),
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.cancel_now()

    def cancel_now(self) -> None:
        """Cancel without asking."""
        view = self._view
        if view is None:
            return
        if self._runner is not None and self._runner.running:
            self._runner.cancel()  # sets flags only: safe on the GUI thread
        else:
            self.tasks.submit(cancel_job_task, view.job.id, on_done=lambda _r: self.reload(),
                              on_error=self._on_error)

    def _on_speed(self, *_args: object) -> None:
        self._speed_timer.start()

    def _apply_speed(self) -> None:
        if self._view is None:
            return
        concurrency, rate = self.concurrency.value(), self.rate.value() or None
        if self._runner is not None and self._runner.running:
            self.tasks.submit(call_runner_task, self._runner, "set_concurrency", concurrency)
            self.tasks.submit(call_runner_task, self._runner, "set_rate", rate)
        else:
            self.tasks.submit(settings_task, self._view.job.id, concurrency, rate)

    def retry_failed(self) -> None:
        """Put the failed rows back to be sent (new tokens); Start sends them."""
        self._decide("retry")

    def check_unknown(self) -> None:
        """Ask the delivery events about the unknown rows."""
        emit(self.status_message, self.tr("Asking Netcore about the unknown rows…"))
        self._decide("check")

    def resend_unknown(self, *, confirm: bool = True) -> None:
        """Send the unknown rows again, after the person accepts they may arrive twice."""
        if confirm:
            answer = QMessageBox.warning(
                self, self.tr("Send unknown rows again?"),
                self.tr("These rows may already have been delivered: sending them again can "
                        "give those recipients the message twice. Check their delivery "
                        "events first if you can.\n\nSend them again?"),
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self._decide("resend")

    def leave_unknown(self) -> None:
        """Leave the unknown rows as they are (never sent again)."""
        self._decide("skip")

    def _decide(self, action: str) -> None:
        if self._view is None:
            return
        self.tasks.submit(decide_task, self._view.job.id, action, self._profile,
                          on_done=self._on_decided, on_error=self._on_error)

    def _on_decided(self, message: str) -> None:
        emit(self.status_message, message)
        self.reload()

    def save_results(self, path: str | None = None) -> None:
        """Save the results CSV (asks where unless ``path`` is given)."""
        if self._view is None:
            return
        if not path:
            path, _ = QFileDialog.getSaveFileName(
                self, self.tr("Save the job's results"),
                f"bulk-job-{self._view.job.id}-results.csv", self.tr("CSV files (*.csv)"),
            )
            if not path:
                return
        self._saving = path
        self.tasks.submit(results_task, self._view.job.id, path, on_done=self._on_saved,
                          on_error=self._on_error)

    def _on_saved(self, count: int) -> None:
        emit(self.status_message, self.tr("Saved {n} rows to {path}.").format(
            n=count, path=self._saving))

    # --- preview ------------------------------------------------------------------------------

    def _on_filter(self, index: int) -> None:
        choice = self.filter.itemData(index)
        states = _FILTERS[choice][1] if isinstance(choice, int) else ()
        self.proxy.set_states(states)

    def _selected_row_number(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        source = self.proxy.mapToSource(rows[0])
        return self.model.row_at(source.row()).row if source.isValid() else None

    def _select_number(self, number: int) -> None:
        source_row = number - 1
        if not 0 <= source_row < self.model.rowCount():
            return
        index = self.proxy.mapFromSource(self.model.index(source_row, 0))
        if index.isValid():
            self.table.selectRow(index.row())
            self.table.scrollTo(index)

    def _step(self, delta: int) -> None:
        current = self.table.currentIndex()
        row = (current.row() if current.isValid() else -1) + delta
        if 0 <= row < self.proxy.rowCount():
            self.table.selectRow(row)

    def _next_flagged(self) -> None:
        if self._view is None or not self._view.flags:
            return
        current = self._selected_row_number() or 0
        numbers = sorted(self._view.flags)
        following = [n for n in numbers if n > current] or numbers
        self.filter.setCurrentIndex(0)
        self._select_number(following[0])

    def _on_selection(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        number = self._selected_row_number()
        view = self._view
        if number is None or view is None:
            return
        row = self.model.row_at(number - 1)
        missing = self.model.flags_of(number)
        text = self.tr("Row {n} of {total}: {to}").format(n=number, total=len(view.rows),
                                                         to=row.email)
        if missing:
            text += " · " + self.tr("⚠ no value for {keys}").format(
                keys=", ".join(f"[%{k}%]" for k in missing))
        self.row_label.setText(text)
        self.tasks.submit(row_preview_task, view.job, row, self._preview_cache,
                          on_done=self._on_row_preview, on_error=self._on_preview_error,
                          latest="bulk-preview")

    def _on_row_preview(self, result: tuple[PreviewFrame, PreviewDetails]) -> None:
        if self._shut:
            return
        frame, details = result
        self.preview.show_frame(frame)
        self.preview.show_details(details)

    def _on_preview_error(self, message: str) -> None:
        emit(self.status_message, message)

    # --- life cycle ---------------------------------------------------------------------------

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the runner (the job stays resumable) and the worker this panel made."""
        if self._shut:
            return
        self._shut = True
        self._speed_timer.stop()
        runner, self._runner = self._runner, None
        if runner is not None and runner.running:
            # Quitting: waiting here is bounded, and the runner's own threads do the writes.
            runner.stop(timeout)
        if self._owns_tasks:
            self.tasks.shutdown()
        cleanup = getattr(self.preview.renderer, "cleanup", None)
        if callable(cleanup):
            cleanup()


# --- the start-up question ---------------------------------------------------------------------


class InterruptedJobsDialog(QDialog):
    """Lists unfinished bulk jobs at start-up and offers to open one."""

    def __init__(self, jobs: list[JobSummary], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("interruptedJobsDialog")
        self.setAccessibleName(self.tr("Unfinished bulk jobs"))
        self.setWindowTitle(self.tr("Unfinished bulk jobs"))
        self.jobs = jobs
        #: The job the person chose to open, or ``None``.
        self.chosen: int | None = None
        #: Jobs the person chose to cancel.
        self.cancelled: list[int] = []
        intro = QLabel(self.tr(
            "These bulk jobs did not finish (the app was closed or stopped while they ran). "
            "Open one to resume it; rows whose answer never arrived are listed as “unknown” "
            "and are not sent again unless you say so."))
        intro.setWordWrap(True)
        self.list = named(QListWidget(), "interruptedJobsList", self.tr("Unfinished jobs"),
                          self.tr("Select a job to open or cancel it"))
        for summary in jobs:
            p = summary.progress
            text = self.tr("#{id} {label}: {done} of {total} done, {left} left").format(
                id=summary.job.id, label=summary.job.label, done=p.done, total=p.total,
                left=p.left)
            if p.unknown:
                text += self.tr(", {n} unknown").format(n=p.unknown)
            if summary.job.reason:
                text += f" — {summary.job.reason}"
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.UserRole, summary.job.id)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        buttons = QDialogButtonBox()
        self.open_button = buttons.addButton(self.tr("Open and resume…"),
                                             QDialogButtonBox.ButtonRole.AcceptRole)
        named(self.open_button, "interruptedJobsOpen", self.tr("Open the job"),
              with_shortcut(self.tr("Open the selected job to resume it"), "Return"))
        self.cancel_job_button = buttons.addButton(self.tr("Cancel the job"),
                                                   QDialogButtonBox.ButtonRole.DestructiveRole)
        named(self.cancel_job_button, "interruptedJobsCancel", self.tr("Cancel the job"),
              self.tr("Cancel the selected job: its rows not sent are cancelled"))
        later = buttons.addButton(self.tr("Later"), QDialogButtonBox.ButtonRole.RejectRole)
        named(later, "interruptedJobsLater", self.tr("Later"),
              with_shortcut(self.tr("Decide later (Bulk → Unfinished jobs)"), "Esc"))
        self.open_button.clicked.connect(self._open)
        self.cancel_job_button.clicked.connect(self._cancel)
        later.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.resize(620, 300)

    def _selected(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def _open(self) -> None:
        self.chosen = self._selected()
        self.accept()

    def _cancel(self) -> None:
        job_id = self._selected()
        if job_id is None:
            return
        self.cancelled.append(job_id)
        self.list.takeItem(self.list.currentRow())
        if self.list.count() == 0:
            self.reject()

