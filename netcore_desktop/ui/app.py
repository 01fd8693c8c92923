"""Starting the window: ``netcore-desktop`` and ``netcore-desktop --sandbox``.

:func:`run_app` creates the application, follows the system's light/dark scheme, opens the
window on the last used profile (or the embedded sandbox), and on quit stops every thread
with bounded waits. Logging goes to stderr and to a file in the log directory, through a
filter that masks keys.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from types import TracebackType

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtWidgets import QApplication

from netcore_desktop import __version__

log = logging.getLogger(__name__)

#: When set, the app prints "SHOWN <t>" (window on screen, event loop running) and "READY <t>"
#: (preview created and the first frame loaded), ``t`` being ``time.perf_counter()`` (the
#: monotonic clock, comparable between processes), then quits; with the value ``hold`` it
#: stays open. The start-up benchmark's hook.
BENCH_ENV = "NETCORE_DESKTOP_BENCH_STARTUP"


def _setup_logging() -> None:
    """Log to stderr and a file. Key redaction is added once the worker has loaded the
    keyring module (:meth:`MainWindow._on_secrets_ready`): importing it here would cost
    ~50 ms of start-up, and no key exists in this process before then."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(os.environ.get("NETCORE_DESKTOP_LOG", "WARNING").upper())
        try:
            from netcore_desktop.core.paths import log_dir

            file_handler = logging.FileHandler(log_dir() / "netcore-desktop.log", encoding="utf-8")
            file_handler.setFormatter(handler.formatter)
            file_handler.setLevel(logging.INFO)
            root.addHandler(file_handler)
        except OSError as exc:
            log.warning("no log file: %s", exc)


def _install_crash_handlers() -> None:
    """Log uncaught exceptions (keys masked by the log filter) instead of dying silently."""

    def on_exception(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        log.critical("Unexpected error", exc_info=(kind, value, tb))

    def on_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None:
            log.critical(
                "Unexpected error in thread %s",
                args.thread.name if args.thread else "?",
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            )

    sys.excepthook = on_exception
    threading.excepthook = on_thread_exception


def make_application(argv: list[str] | None = None) -> QApplication:
    """The ``QApplication`` (reused when one exists), named for settings and the desktop."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Chromium will not run its sandbox as root (CI containers and some kiosks run as
        # root), and QtWebEngine then fails to start at all. Only as root, and only if the
        # person did not decide otherwise, run the preview without Chromium's sandbox; the
        # preview is still locked down (no JavaScript, no network).
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")
    # QtWebEngine is imported after the window is shown; it needs this set before the
    # application object exists.
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        app = existing
    else:
        app = QApplication(argv if argv is not None else sys.argv)
    app.setApplicationName("netcore-desktop")
    app.setOrganizationName("netcore-desktop")
    app.setApplicationDisplayName("Netcore Desktop")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("org.netcoredesktop.NetcoreDesktop")
    return app


def run_app(sandbox: bool = False, profile: str | None = None) -> int:
    """Open the window; return the exit code when it closes.

    ``sandbox`` starts the embedded offline sandbox (a free loopback port), points the
    "Sandbox" profile at it and loads the sample draft; it is stopped on quit. ``profile``
    opens that profile instead of the last used one.
    """
    app = make_application()
    _setup_logging()
    _install_crash_handlers()
    from netcore_desktop.ui.main_window import MainWindow
    from netcore_desktop.ui.send_worker import SANDBOX_PROFILE
    from netcore_desktop.ui.style import ThemeFollower

    window = MainWindow(
        profile_name=profile or (SANDBOX_PROFILE if sandbox else None),
        start_sandbox=sandbox,
        use_sample_draft=sandbox,
    )
    # The style sheet is set once the window is built and before it is shown: every widget
    # is then polished once (~8 ms), not again each time the building moves it to a new
    # parent (~35 ms with the sheet already in place). The first paint has the sheet.
    ThemeFollower(app)
    app.aboutToQuit.connect(window.shutdown)
    bench_mode = os.environ.get(BENCH_ENV, "")
    if bench_mode:
        bench = _BenchHook(window, app, hold=bench_mode == "hold")
        window.first_painted.connect(bench.on_shown)
        window.ready.connect(bench.on_ready)
    window.show()
    code = app.exec()
    if window.worker.running:
        # A request is still waiting for its answer after the bounded wait. Destroying a
        # running QThread aborts the process with "QThread: Destroyed while thread is still
        # running"; leaving at once is cleaner, and the history marks the attempt "pending",
        # which the next start shows as "may have been sent".
        logging.shutdown()
        os._exit(code)
    return code


class _BenchHook:
    """Prints start-up timings for the benchmark (and quits unless told to hold)."""

    def __init__(self, window: object, app: QApplication, *, hold: bool) -> None:
        self._window = window
        self._app = app
        self._hold = hold

    def on_shown(self) -> None:
        print(f"SHOWN {time.perf_counter():.6f}", flush=True)

    def on_ready(self) -> None:
        preview = getattr(self._window, "preview", None)
        shown = getattr(preview, "shown", None)
        if shown is not None and getattr(preview, "shown_generation", 0) < 0:
            shown.connect(self._on_first_frame)
        else:
            self._on_first_frame()

    def _on_first_frame(self, *_args: object) -> None:
        if self._hold and getattr(self, "_printed", False):
            return
        self._printed = True
        print(f"READY {time.perf_counter():.6f}", flush=True)
        if not self._hold:
            QTimer.singleShot(0, self._app.quit)
