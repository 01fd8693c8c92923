"""Autosave of the draft being composed, so a crash or a kill loses at most ~2 s of typing.

Edits are debounced (:data:`DEBOUNCE_MS` after the last keystroke, but never more than
:data:`MAX_DELAY_MS` after the first unsaved one, so non-stop typing is still saved), then
handed to a small writer thread that serialises the draft (attachments are base64-encoded
there, not on the GUI thread) and replaces the file atomically. The writer is its own thread
rather than the send worker because a send can keep that one busy for many seconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import QObject, QTimer

from netcore_desktop.core.message import Draft, draft_from_dict, draft_to_dict
from netcore_desktop.ui.compose_controller import ComposeController

log = logging.getLogger(__name__)

DEBOUNCE_MS: Final = 600
MAX_DELAY_MS: Final = 1200
FILE_NAME: Final = "autosave-draft.json"
_FORMAT: Final = "netcore-desktop-autosave"


def default_path() -> Path:
    """Where the autosave lives: the data directory."""
    from netcore_desktop.core.paths import data_dir

    return data_dir() / FILE_NAME


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def serialise(draft: Draft, path: Path | None, allow_remote: bool) -> bytes:
    """The autosave file's bytes for ``draft``."""
    doc: dict[str, Any] = {
        "format": _FORMAT,
        "saved_at": time.time(),
        "path": str(path) if path is not None else None,
        "allow_remote_images": allow_remote,
        "draft": draft_to_dict(draft),
    }
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def read_autosave(path: Path) -> tuple[Draft, Path | None, bool] | None:
    """The autosaved draft, the file it belonged to, and its remote-images choice."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("the autosaved draft could not be read: %s", exc)
        return None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        return None
    try:
        draft = draft_from_dict(doc.get("draft") or {})
    except ValueError as exc:
        log.warning("the autosaved draft is damaged: %s", exc)
        return None
    raw_path = doc.get("path")
    return draft, Path(raw_path) if isinstance(raw_path, str) else None, bool(
        doc.get("allow_remote_images")
    )


class _Writer(threading.Thread):
    """Writes the newest pending draft; older pending ones are skipped."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="draft-autosave", daemon=True)
        self.path = path
        self._cond = threading.Condition()
        self._pending: tuple[Draft, Path | None, bool] | None = None
        self._busy = False
        self._stopping = False
        self.writes = 0

    def submit(self, item: tuple[Draft, Path | None, bool]) -> None:
        with self._cond:
            self._pending = item
            self._cond.notify_all()

    def run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopping:
                    self._cond.wait()
                if self._pending is None and self._stopping:
                    return
                item, self._pending = self._pending, None
                self._busy = True
            try:
                assert item is not None
                _write_atomically(self.path, serialise(*item))
                self.writes += 1
            except Exception:
                log.exception("autosave failed")
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until nothing is pending or being written."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()


class Autosaver(QObject):
    """Watches the controller and keeps the autosave file current."""

    def __init__(
        self, controller: ComposeController, path: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._controller = controller
        self.path = path if path is not None else default_path()
        self._writer = _Writer(self.path)
        self._writer.start()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.save_now)
        self._dirty_since: float | None = None
        self._enabled = True
        controller.draft_changed.connect(self._on_changed)
        controller.remote_images_changed.connect(self._on_changed)

    @property
    def writes(self) -> int:
        """How many times the file was written (for tests)."""
        return self._writer.writes

    def restore(self) -> tuple[Draft, Path | None, bool] | None:
        """The autosaved draft, if there is one."""
        return read_autosave(self.path)

    def _on_changed(self, *_args: object) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if self._dirty_since is None:
            self._dirty_since = now
        waited_ms = (now - self._dirty_since) * 1000
        self._timer.start(int(max(0, min(DEBOUNCE_MS, MAX_DELAY_MS - waited_ms))))

    def save_now(self) -> None:
        """Hand the current draft to the writer thread."""
        self._timer.stop()
        self._dirty_since = None
        c = self._controller
        self._writer.submit((c.draft_to_keep(), c.path, c.allow_remote_images))

    def flush(self, timeout: float = 5.0) -> bool:
        """Write any pending change and wait for it (on quit)."""
        if self._timer.isActive() or self._dirty_since is not None:
            self.save_now()
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Flush and stop the writer thread."""
        self._enabled = False
        self.flush()
        self._writer.stop()
        self._writer.join(5)
