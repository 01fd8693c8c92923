"""A worker thread for the history browser and bulk jobs: run a function there, get a callback.

The support tools (history browser, CSV import, bulk jobs) do SQLite reads and writes,
keyring calls and HTTP requests; none of that may run on the GUI thread
(``shared/DESIGN.md``, "Threads"). :class:`TaskRunner` owns one ``QThread`` with a
:class:`_TaskWorker` in it. :meth:`TaskRunner.submit` sends ``fn`` there through a queued
signal; ``fn(context, *args)`` runs in the worker thread with a :class:`SupportContext`
(history, secrets, profiles, one send service per profile, all made in that thread), and its
result (or the error's message) comes back to the GUI thread, where the ``on_done`` /
``on_error`` callback runs. The callbacks are kept on the GUI side and called by a bound
method of the runner, so they always run in the GUI thread.

Searches as you type use ``latest=`` keys: when several tasks with the same key are queued,
only the newest runs, so a fast typist never waits for queries nobody wants any more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from netcore_desktop.ui.qt_compat import emit

if TYPE_CHECKING:
    from netcore_desktop.core.client import RetryPolicy
    from netcore_desktop.core.history import History
    from netcore_desktop.core.profiles import Profile, ProfileStore
    from netcore_desktop.core.secrets import SecretStore
    from netcore_desktop.core.sending import SendService

log = logging.getLogger(__name__)


class SupportContext:
    """What tasks use, made on first use in the worker thread (never on the GUI thread)."""

    def __init__(self, history_path: Path | None = None, retry: RetryPolicy | None = None,
                 service_factory: Callable[[Profile], SendService] | None = None,
                 secrets_factory: Callable[[], SecretStore] | None = None) -> None:
        self._history_path = history_path
        self._retry = retry
        self._service_factory = service_factory
        self._secrets_factory = secrets_factory
        self._history: History | None = None
        self._secrets: SecretStore | None = None
        self._services: dict[str, tuple[Profile, SendService]] = {}
        #: Anything a task wants to keep for a later task (e.g. a prepared resend).
        self.kept: dict[Any, Any] = {}

    def history(self) -> History:
        """The send history (its own connection in this thread)."""
        if self._history is None:
            from netcore_desktop.core.history import History

            self._history = History(self._history_path)
        return self._history

    def secrets(self) -> SecretStore:
        """The keyring wrapper."""
        if self._secrets is None:
            if self._secrets_factory is not None:
                self._secrets = self._secrets_factory()
            else:
                from netcore_desktop.core.secrets import SecretStore

                self._secrets = SecretStore()
        return self._secrets

    def profiles(self) -> ProfileStore:
        """The profiles file (read fresh each time: the window may have changed it)."""
        from netcore_desktop.core.profiles import ProfileStore

        return ProfileStore()

    def profile(self, name: str) -> Profile:
        """The saved profile ``name`` (``KeyError`` if it was removed)."""
        return self.profiles().get(name)

    def service(self, profile: Profile) -> SendService:
        """The send service of ``profile`` (one keep-alive client per profile)."""
        known = self._services.get(profile.name)
        if known is not None and known[0] == profile:
            return known[1]
        if known is not None:
            known[1].close()
        if self._service_factory is not None:
            service = self._service_factory(profile)
        else:
            from netcore_desktop.core.sending import SendService

            service = SendService(profile, self.secrets(), self.history(), retry=self._retry)
        self._services[profile.name] = (profile, service)
        return service

    def close(self) -> None:
        """Close clients and the history (in the worker thread)."""
        for _profile, service in self._services.values():
            try:
                service.close()
            except Exception:
                log.exception("closing a send service failed")
        self._services.clear()
        if self._history is not None:
            self._history.close()
            self._history = None


@dataclass(frozen=True)
class _Task:
    task_id: int
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    latest: str | None


class _TaskWorker(QObject):
    """Lives in the worker thread and runs tasks one after another."""

    finished = Signal(int, object)
    failed = Signal(int, str)

    def __init__(self, context: SupportContext, latest: dict[str, int],
                 lock: threading.Lock) -> None:
        super().__init__()
        self.context = context
        self._latest = latest
        self._lock = lock

    @Slot(object)
    def run(self, task: _Task) -> None:
        """Run one task; a task superseded by a newer one with its key is skipped."""
        if task.latest is not None:
            with self._lock:
                if self._latest.get(task.latest) != task.task_id:
                    emit(self.failed, task.task_id, "")  # superseded: tell nobody
                    return
        try:
            result = task.fn(self.context, *task.args)
        except Exception as exc:
            log.exception("a background task failed")
            emit(self.failed, task.task_id, str(exc) or type(exc).__name__)
            return
        emit(self.finished, task.task_id, result)

    @Slot()
    def close(self) -> None:
        """Close what the context opened."""
        self.context.close()


Callback = Callable[[Any], None]


class TaskRunner(QObject):
    """The GUI side of one worker thread; see the module docstring."""

    _run = Signal(object)
    _close = Signal()
    #: A task ended (its id), after its callback ran.
    task_finished = Signal(int)

    def __init__(self, context: SupportContext | None = None, name: str = "support-worker",
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._latest: dict[str, int] = {}
        self._callbacks: dict[int, tuple[Callback | None, Callback | None]] = {}
        self._next = 0
        self._accepting = True
        self.context = context or SupportContext()
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._worker = _TaskWorker(self.context, self._latest, self._lock)
        self._worker.moveToThread(self._thread)
        self._run.connect(self._worker.run)
        self._close.connect(self._worker.close)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._thread.finished.connect(self._worker.deleteLater)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any, on_done: Callback | None = None,
               on_error: Callback | None = None, latest: str | None = None) -> int:
        """Run ``fn(context, *args)`` in the worker thread; returns the task's id.

        ``on_done(result)`` or ``on_error(message)`` runs later in the GUI thread. With
        ``latest``, a task still queued is dropped when a newer one with the same key
        comes (its callbacks are never called). Returns -1 once shut down.
        """
        if not self._accepting:
            return -1
        self._next += 1
        task_id = self._next
        self._callbacks[task_id] = (on_done, on_error)
        if latest is not None:
            with self._lock:
                self._latest[latest] = task_id
        emit(self._run, _Task(task_id, fn, args, latest))
        return task_id

    @property
    def pending(self) -> int:
        """Tasks submitted and not answered yet."""
        return len(self._callbacks)

    @Slot(int, object)
    def _on_finished(self, task_id: int, result: object) -> None:
        on_done, _ = self._callbacks.pop(task_id, (None, None))
        if on_done is not None and self._accepting:
            try:
                on_done(result)
            except Exception:
                log.exception("a task callback failed")
        emit(self.task_finished, task_id)

    @Slot(int, str)
    def _on_failed(self, task_id: int, message: str) -> None:
        _, on_error = self._callbacks.pop(task_id, (None, None))
        if message and on_error is not None and self._accepting:
            try:
                on_error(message)
            except Exception:
                log.exception("a task error callback failed")
        emit(self.task_finished, task_id)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop taking tasks, close the context in the thread, stop the thread (bounded)."""
        if not self._thread.isRunning():
            return True
        self._accepting = False
        emit(self._close)
        self._thread.quit()
        started = time.monotonic()
        stopped = bool(self._thread.wait(timeout_ms))
        if not stopped:
            log.error("the %s thread did not stop within %d ms", self._thread.objectName(),
                      timeout_ms)
        log.debug("%s stopped in %.0f ms", self._thread.objectName(),
                  (time.monotonic() - started) * 1000)
        return stopped
