"""The preview thread: renders the newest draft, in a helper process, never queuing up.

Rendering a 50 KB Markdown body takes tens of milliseconds and holds Python's global lock
for long stretches (see :mod:`.render_process`), so the work runs in a helper process driven
from this ``QThread``; the thread itself only waits on a pipe. :class:`PreviewRenderer`
keeps a single "latest request" slot: each edit overwrites it and wakes the
:class:`RenderWorker`, which always renders whatever is newest and drops anything older, so
the work never queues up behind fast typing.

A result comes in two kinds: a :class:`PreviewFrame` (the HTML the recipient sees, subject,
addresses) as soon as possible after each edit, and :class:`PreviewDetails` (plain text, the
request JSON, headers, checks), which the window asks for once typing pauses and which
always yields to a newer frame. When no helper process can be started, the same functions
run in this thread instead.
"""

from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, QThread, Signal, Slot

from netcore_desktop.ui.qt_compat import emit
from netcore_desktop.ui.render_process import (
    PreviewDetails,
    PreviewFrame,
    PreviewTarget,
    RenderError,
    RenderProcess,
    RenderRequest,
    _display_payload,
    describe_headers,
    lighten,
    render_details,
    render_frame,
)

__all__ = [
    "PreviewDetails",
    "PreviewFrame",
    "PreviewRenderer",
    "PreviewTarget",
    "RenderRequest",
    "RenderWorker",
    "_display_payload",
    "describe_headers",
]

log = logging.getLogger(__name__)


class _LatestSlot:
    """Holds only the newest request of one kind; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._request: RenderRequest | None = None

    def put(self, request: RenderRequest) -> None:
        with self._lock:
            self._request = request

    def take(self) -> RenderRequest | None:
        with self._lock:
            request, self._request = self._request, None
            return request

    def pending(self) -> bool:
        with self._lock:
            return self._request is not None


class RenderWorker(QObject):
    """Lives in the preview thread; renders the newest request it finds."""

    #: A :class:`PreviewFrame` is ready.
    frame_ready = Signal(object)
    #: A :class:`PreviewDetails` is ready.
    details_ready = Signal(object)

    def __init__(
        self, frames: _LatestSlot, details: _LatestSlot, process: RenderProcess | None
    ) -> None:
        super().__init__()
        self._frames = frames
        self._details = details
        self._process = process

    def _run(self, kind: str, request: RenderRequest) -> object:
        if self._process is not None:
            try:
                return self._process.call(kind, request)
            except RenderError:
                log.exception("the preview helper failed; rendering in this process")
                self._process = None
        return render_frame(request) if kind == "frame" else render_details(request)

    @Slot()
    def work(self) -> None:
        """Render the newest frame, else the newest details (extra wake-ups return at once)."""
        try:
            request = self._frames.take()
            if request is not None:
                emit(self.frame_ready, self._run("frame", request))
                return
            request = self._details.take()
            if request is not None and not self._frames.pending():
                emit(self.details_ready, self._run("details", request))
        except Exception:  # a broken draft must never take the preview thread down
            log.exception("preview render failed")


class PreviewRenderer(QObject):
    """GUI-side handle of the preview thread: :meth:`submit` drafts, get frames back."""

    frame_ready = Signal(object)
    details_ready = Signal(object)
    _wake = Signal()

    def __init__(self, parent: QObject | None = None, *, use_process: bool = True) -> None:
        super().__init__(parent)
        self._frames = _LatestSlot()
        self._details = _LatestSlot()
        self._thread = QThread()
        self._thread.setObjectName("preview-render")
        self._process = RenderProcess() if use_process else None
        self._worker = RenderWorker(self._frames, self._details, self._process)
        self._worker.moveToThread(self._thread)
        self._wake.connect(self._worker.work)
        self._worker.frame_ready.connect(self._on_frame)
        self._worker.details_ready.connect(self._on_details)
        self._thread.finished.connect(self._worker.deleteLater)
        self._thread.start()
        self._running = True

    def submit(self, request: RenderRequest) -> None:
        """Render a frame for ``request`` soon, replacing any frame request not yet started."""
        if self._running:
            self._frames.put(_light(request))
            emit(self._wake)

    def submit_details(self, request: RenderRequest) -> None:
        """Compute the details for ``request`` when no frame is waiting."""
        if self._running:
            self._details.put(_light(request))
            emit(self._wake)

    @Slot(object)
    def _on_frame(self, frame: PreviewFrame) -> None:
        emit(self.frame_ready, frame)

    @Slot(object)
    def _on_details(self, details: PreviewDetails) -> None:
        emit(self.details_ready, details)

    def shutdown(self, timeout_ms: int = 3000) -> None:
        """Stop the helper process and the preview thread (bounded waits)."""
        if not self._running:
            return
        self._running = False
        self._frames.take()
        self._details.take()
        self._thread.quit()
        if self._process is not None:
            # Ending the helper also wakes a render still waiting for it.
            self._process.stop(timeout=timeout_ms / 2000)
        if not self._thread.wait(timeout_ms):
            log.warning("the preview thread did not stop within %d ms", timeout_ms)


def _light(request: RenderRequest) -> RenderRequest:
    light = lighten(request.draft)
    if light is request.draft:
        return request
    return RenderRequest(
        request.generation, light, request.envelope, request.target, request.created
    )

