"""The support tools in the window: the history browser dock, CSV import and bulk jobs.

:class:`SupportTools` is what the main window creates to get the support-staff half of the
app (``issues show 5``): a "History" dock tabbed beside the response log, a "History" menu
(show the history, import recipients from CSV, unfinished bulk jobs), a window per bulk job,
and, once the window is shown, the question about bulk jobs that did not finish (the app was
closed or killed while they ran). It owns two worker threads (searches; everything else) and
stops them, and every running job, in :meth:`SupportTools.shutdown` (the job stays
resumable).

The window needs only two lines for all this: ``self.support = SupportTools(self)`` once its
parts exist, and ``self.support.shutdown()`` in its own shutdown.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFrame,
    QMenu,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from netcore_desktop.ui.bulk_job import (
    BulkJobPanel,
    InterruptedJobsDialog,
    JobSummary,
    cancel_job_task,
    recover_task,
)
from netcore_desktop.ui.common import with_shortcut
from netcore_desktop.ui.csv_import_dialog import CsvImportDialog
from netcore_desktop.ui.history_browser import HistoryBrowser, ResendDone
from netcore_desktop.ui.tasks import SupportContext, TaskRunner

log = logging.getLogger(__name__)

#: Longest wait between a send finishing and the history dock showing it.
HISTORY_REFRESH_MS = 250


def create_resend_job_task(ctx: SupportContext, attempt_ids: list[int]) -> int:
    """A bulk job resending history entries (all sent with one profile); returns its id."""
    from netcore_desktop.core.jobs import JobStore

    history = ctx.history()
    profiles = {history.get(i).profile for i in attempt_ids}
    if len(profiles) != 1:
        raise ValueError(QCoreApplication.translate(
            "SupportTools", "The selected entries were sent with different profiles "
            "({profiles}): a bulk job sends with one profile. Select the entries of one "
            "profile (the Profile filter shows only them), or use “Resend selected as a bulk "
            "job” in the History, which makes one job per profile.").format(
            profiles=", ".join(sorted(profiles))))
    return JobStore(history).create_resend(profiles.pop(), attempt_ids)


class BulkJobWindow(QDialog):
    """A window of its own for one bulk job (several can be open)."""

    def __init__(self, tasks: TaskRunner, job_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("bulkJobWindow")
        self.setAccessibleName(self.tr("Bulk job #{id}").format(id=job_id))
        self.setWindowTitle(self.tr("Bulk job #{id}").format(id=job_id))
        self.setWindowFlag(Qt.WindowType.WindowMaximizeButtonHint, True)
        self.setModal(False)
        self.panel = BulkJobPanel(tasks, parent=self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel)
        self.resize(1280, 760)
        self.panel.open_job(job_id)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window of a running job asks; the job then goes on in the background."""
        if self.panel.running:
            answer = QMessageBox.question(
                self, self.tr("The job is running"),
                self.tr("Bulk job #{id} is still sending. Close this window and let it go on? "
                        "(Reopen it from History → Unfinished bulk jobs.)").format(
                    id=self.panel.job_id),
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        super().closeEvent(event)


class SupportTools(QObject):
    """The history dock, the History menu and the bulk job windows of one main window."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        send_worker = getattr(getattr(window, "worker", None), "worker", None)
        retry = getattr(send_worker, "_retry", None)
        # The send worker's key store: a key kept for this session only (no usable keyring,
        # or the embedded sandbox's key) is then known here too. It is thread-safe.
        secrets = getattr(send_worker, "secrets", None)
        self.tasks = TaskRunner(
            SupportContext(retry=retry, secrets_factory=secrets), name="support-worker",
            parent=self,
        )
        self.search_tasks = TaskRunner(SupportContext(), name="history-search", parent=self)
        self.browser = HistoryBrowser(self.tasks, self.search_tasks)
        self.jobs: dict[int, BulkJobWindow] = {}
        self._shut = False
        # The start-up question is about jobs of earlier sessions, not ones made meanwhile.
        self._started = datetime.now(UTC)
        self._ask_timer = QTimer(self)
        self._ask_timer.setSingleShot(True)
        self._ask_timer.setInterval(300)
        self._ask_timer.timeout.connect(self._check_unfinished)
        # Sends can finish many times a second; the dock searches again at most once per
        # interval instead of once per send (each search resets its table on this thread).
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(HISTORY_REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh_history)
        self._history_stale = False
        # The bottom area's height before the history grew it, and the height it was given.
        self._grown: tuple[int, int] | None = None

        self.dock = QDockWidget(self.tr("History"), window)
        self.dock.setObjectName("historyDock")
        self.dock.setAccessibleName(self.tr("History"))
        # The browser's filters and details need more height than the log; scrolled inside
        # the dock, they no longer force the bottom area (and so the log) to their height,
        # which left the compose form's recipients table one row tall.
        scroller = QScrollArea()
        scroller.setObjectName("historyScroller")
        scroller.setWidgetResizable(True)
        scroller.setFrameShape(QFrame.Shape.NoFrame)
        scroller.setWidget(self.browser)
        self.dock.setWidget(scroller)
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable
                              | QDockWidget.DockWidgetFeature.DockWidgetMovable
                              | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.dock.visibilityChanged.connect(self._on_dock_visibility)
        log_dock = getattr(window, "log_dock", None)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        if log_dock is not None:
            window.tabifyDockWidget(log_dock, self.dock)
            log_dock.raise_()
            log_dock.visibilityChanged.connect(self._on_log_visibility)

        self.act_history = self._action(
            "actionHistory", self.tr("&History"), "Ctrl+H",
            self.tr("Show the history of everything sent and search it"),
        )
        self.act_import = self._action(
            "actionImportCsv", self.tr("&Import recipients from CSV…"), "Ctrl+Shift+U",
            self.tr("Send the current draft to a CSV list of recipients as one bulk job"),
        )
        self.act_jobs = self._action(
            "actionBulkJobs", self.tr("&Unfinished bulk jobs…"), "Ctrl+J",
            self.tr("Resume, check or cancel bulk jobs that did not finish"),
        )
        menu = QMenu(self.tr("Hi&story"), window.menuBar())
        menu.setObjectName("historyMenu")
        for action in (self.act_history, self.act_import, self.act_jobs):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.browser.act_resend)
        menu.addAction(self.browser.act_resend_to)
        menu.addAction(self.browser.act_copy_summary)
        menu.addAction(self.browser.act_bulk)
        self.menu = menu
        self._insert_menu(window, menu)

        self.act_history.triggered.connect(self.show_history)
        self.act_import.triggered.connect(self.import_csv)
        self.act_jobs.triggered.connect(self.offer_unfinished)
        self.browser.open_draft_requested.connect(self._open_draft)
        self.browser.resent.connect(self._on_resent)
        self.browser.status_message.connect(self._status)
        self.browser.bulk_resend_requested.connect(self.bulk_resend)
        ready = getattr(window, "ready", None)
        if ready is not None:
            ready.connect(self._on_window_ready)
        finished = getattr(window, "send_finished", None)
        if finished is not None:
            finished.connect(self._on_send_finished)

    def _action(self, name: str, text: str, shortcut: str, tip: str) -> QAction:
        action = QAction(text, self.window)
        action.setObjectName(name)
        action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(with_shortcut(tip, shortcut))
        action.setStatusTip(tip)
        self.window.addAction(action)
        return action

    @staticmethod
    def _insert_menu(window: Any, menu: QMenu) -> None:
        """Put the menu before Settings (found by the profiles action it holds)."""
        bar = window.menuBar()
        target = getattr(window, "act_profiles", None)
        for action in bar.actions():
            sub = action.menu()
            if target is not None and sub is not None and target in sub.actions():
                bar.insertMenu(action, menu)
                return
        bar.addMenu(menu)

    def _status(self, text: str) -> None:
        status = getattr(self.window, "statusBar", None)
        if callable(status):
            status().showMessage(text, 15000)

    # --- history ------------------------------------------------------------------------------

    def show_history(self) -> None:
        """Show the history dock and put the cursor in its search box (Ctrl+H)."""
        self.dock.setVisible(True)
        self.dock.raise_()
        self._make_room()
        self.browser.focus_search()

    def _make_room(self) -> None:
        """Grow the bottom area for the history (towards 40% of the window's height).

        It is sized for the response log; finding and reading a sent message needs more
        room. It is never shrunk here, and it gets its old height back when the response log
        is shown again, unless the person has resized it meanwhile.
        """
        window = self.window
        wanted = int(window.height() * 0.4)
        before = self.dock.height()
        if self._shut or self.dock.isFloating() or before >= wanted:
            return
        if self._grown is None:
            self._grown = (before, -1)
            # The new height is known once the main window has laid the docks out again.
            QTimer.singleShot(50, self._note_grown)
        window.resizeDocks([self.dock], [wanted], Qt.Orientation.Vertical)

    def _note_grown(self) -> None:
        if self._grown is not None and not self._shut:
            self._grown = (self._grown[0], self.dock.height())

    def _on_log_visibility(self, visible: bool) -> None:
        if not visible:
            return
        grown, self._grown = self._grown, None
        log_dock = getattr(self.window, "log_dock", None)
        if grown is None or log_dock is None or self._shut:
            return
        before, made = grown
        if made < 0 or abs(log_dock.height() - made) <= 4:  # not resized by hand since
            self._resize_log(log_dock, before, before)

    def _resize_log(self, log_dock: Any, height: int, request: int, again: bool = True) -> None:
        # The size resizeDocks() takes includes the tab bar below tabbed docks, whose height
        # is not known here: ask, look at what came of it, and correct once.
        self.window.resizeDocks([log_dock], [request], Qt.Orientation.Vertical)
        if again:
            QTimer.singleShot(50, self, lambda: self._correct_log(log_dock, height, request))

    def _correct_log(self, log_dock: Any, height: int, request: int) -> None:
        off = height - log_dock.height()
        if off and not self._shut and log_dock.isVisible():
            self._resize_log(log_dock, height, request + off, again=False)

    def _history_on_screen(self) -> bool:
        # A dock tabbed behind the response log still counts as visible to Qt; only a
        # dock whose tab is showing has anything on screen.
        return self.dock.isVisible() and not self.browser.visibleRegion().isEmpty()

    def _on_send_finished(self, _finished: object) -> None:
        self._history_stale = True
        if self._history_on_screen() and not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _on_dock_visibility(self, visible: bool) -> None:
        if visible and self.window.isVisible():
            self._make_room()
        if visible and self._history_stale and not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def _refresh_history(self) -> None:
        if self._shut or not self.dock.isVisible():
            return
        if self._history_on_screen():
            self._history_stale = False
            self.browser.refresh()

    def _open_draft(self, draft: Any) -> None:
        load = getattr(self.window, "load_draft", None)
        if callable(load):
            load(draft)
            return
        controller = getattr(self.window, "controller", None)
        if controller is not None:
            controller.load(draft)

    def _on_resent(self, done: ResendDone) -> None:
        model = getattr(self.window, "log_model", None)
        if model is None:
            return
        for entry in done.log_entries:
            model.add(entry)

    # --- bulk ---------------------------------------------------------------------------------

    def import_csv(self) -> None:
        """Ask for a CSV list and make a bulk job of the current draft for it."""
        profile = getattr(self.window, "profile", None)
        controller = getattr(self.window, "controller", None)
        if profile is None or controller is None:
            QMessageBox.information(
                self.window, self.tr("Import recipients"),
                self.tr("Add a profile first: the offline sandbox, or your Netcore account."),
            )
            return
        dialog = CsvImportDialog(self.tasks, controller.draft, profile.name, self.window)
        dialog.job_created.connect(self.open_job)
        dialog.choose_file()
        if dialog.path_label.text() == dialog.tr("No file chosen."):
            dialog.deleteLater()
            return
        dialog.exec()
        dialog.deleteLater()

    def bulk_resend(self, attempt_ids: list[int]) -> None:
        """Make one bulk job resending the given history entries, and open it."""
        self.tasks.submit(create_resend_job_task, list(attempt_ids), on_done=self._on_job_made,
                          on_error=self._bulk_error)

    def _on_job_made(self, job_id: int) -> None:
        self.open_job(job_id)

    def _bulk_error(self, message: str) -> None:
        QMessageBox.warning(self.window, self.tr("Bulk job"), message)

    def open_job(self, job_id: int) -> BulkJobWindow:
        """Show the window of bulk job ``job_id`` (made once, raised after)."""
        window = self.jobs.get(job_id)
        if window is None:
            window = BulkJobWindow(self.tasks, job_id, self.window)
            window.panel.status_message.connect(self._status)
            window.panel.profiles_requested.connect(self._open_profiles)
            self.jobs[job_id] = window
        window.show()
        window.raise_()
        window.activateWindow()
        return window

    def _open_profiles(self) -> None:
        open_profiles = getattr(self.window, "open_profiles", None)
        if callable(open_profiles):
            open_profiles()

    def _on_window_ready(self) -> None:
        # Ask a moment after the window shows, so it is on screen behind the question. The
        # timer is this object's child: it dies with it if the window closes first.
        self._ask_timer.start()

    def _check_unfinished(self) -> None:
        if not self._shut:
            self.tasks.submit(recover_task, on_done=self._on_unfinished_at_start)

    def _on_unfinished_at_start(self, jobs: list[JobSummary]) -> None:
        # At start-up only jobs of earlier sessions that need the person: interrupted,
        # paused, unknown rows.
        wanted = [j for j in jobs if (j.progress.left or j.progress.unknown)
                  and j.job.created_at < self._started]
        if wanted and not self._shut:
            self._ask(wanted)

    def offer_unfinished(self) -> None:
        """List the bulk jobs that did not finish (Ctrl+J)."""
        self.tasks.submit(recover_task, on_done=self._on_unfinished_asked)

    def _on_unfinished_asked(self, jobs: list[JobSummary]) -> None:
        if not jobs:
            QMessageBox.information(self.window, self.tr("Bulk jobs"),
                                    self.tr("Every bulk job has finished."))
            return
        self._ask(jobs)

    def _ask(self, jobs: list[JobSummary]) -> None:
        open_ids = set(self.jobs)
        jobs = [j for j in jobs if j.job.id not in open_ids] or jobs
        dialog = InterruptedJobsDialog(jobs, self.window)
        dialog.exec()
        for job_id in dialog.cancelled:
            self.tasks.submit(cancel_job_task, job_id)
        if dialog.chosen is not None:
            self.open_job(dialog.chosen)
        dialog.deleteLater()

    # --- life cycle ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop running jobs (they stay resumable), the browser and the worker threads."""
        if self._shut:
            return
        self._shut = True
        self._ask_timer.stop()
        self._refresh_timer.stop()
        for window in self.jobs.values():
            try:
                window.panel.shutdown()
            except Exception:
                log.exception("stopping a bulk job window failed")
        self.browser.shutdown()
        self.search_tasks.shutdown()
        self.tasks.shutdown()


__all__ = ["BulkJobWindow", "SupportTools", "create_resend_job_task"]
