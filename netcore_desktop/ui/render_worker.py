"""Rendering the preview off the GUI thread, always for the newest draft only.

Rendering a 50 KB Markdown body takes tens of milliseconds, which would freeze typing if it
ran on the GUI thread. :class:`PreviewRenderer` keeps a single "latest request" slot: each
edit overwrites it and wakes a :class:`RenderWorker` living in its own ``QThread``, which
always renders whatever is newest and drops anything older. So the work never queues up
behind fast typing, and the last keystroke is rendered as soon as the thread is free.

The result comes back in two steps so the picture appears first: a :class:`PreviewFrame`
(the HTML the recipient sees, subject, addresses) and then :class:`PreviewDetails` (plain
text, the request JSON, headers, checks), skipped when a newer request is already waiting.
Everything here calls core functions only; the request JSON is core's payload, pretty-printed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from netcore_desktop.core.checks import Problem, run_checks
from netcore_desktop.core.contract import SEND_PATHS, ApiVersion
from netcore_desktop.core.message import Draft, build_payload
from netcore_desktop.core.render import (
    html_to_text,
    preview_html,
    remote_urls,
    render_html,
    substitute,
)
from netcore_desktop.ui.qt_compat import emit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreviewTarget:
    """What the preview needs to know about the active profile."""

    api_version: ApiVersion = ApiVersion.V6
    live: bool = False
    base_url: str = ""
    profile_name: str = ""


@dataclass(frozen=True)
class RenderRequest:
    """One draft to render for one test recipient."""

    generation: int
    draft: Draft
    envelope: int
    target: PreviewTarget = field(default_factory=PreviewTarget)
    #: ``time.perf_counter()`` when the edit happened (for latency measurements).
    created: float = 0.0


@dataclass(frozen=True)
class PreviewFrame:
    """What the recipient of one envelope will see."""

    generation: int
    envelope: int
    html: str
    subject: str
    sender: str
    to: str
    #: Size of the HTML as sent (before per-recipient values are filled in).
    sent_bytes: int
    remote_count: int
    render_ms: float
    created: float


@dataclass(frozen=True)
class PreviewDetails:
    """The slower parts: plain text, request, headers, checks."""

    generation: int
    text: str
    request_json: str
    headers: str
    problems: tuple[Problem, ...]
    credits: int


def _display_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with attachment contents shortened, for reading on screen."""

    def shorten(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            content = str(item.get("content", ""))
            out.append({**item, "content": f"<{len(content):,} characters of base64>"})
        return out

    shown = dict(payload)
    if "attachments" in shown:
        shown["attachments"] = shorten(shown["attachments"])
    if "personalizations" in shown:
        envs = []
        for env in shown["personalizations"]:
            if "attachments" in env:
                env = {**env, "attachments": shorten(env["attachments"])}
            envs.append(env)
        shown["personalizations"] = envs
    return shown


def describe_headers(draft: Draft, envelope: int, target: PreviewTarget) -> str:
    """The request line and the message headers one recipient's copy will carry."""
    lines: list[str] = []
    path = SEND_PATHS.get(target.api_version, "/v6/mail/send")
    lines.append("# HTTP request")
    lines.append(f"POST {target.base_url.rstrip('/')}{path}")
    if target.api_version is ApiVersion.V6:
        lines.append("Authorization: Bearer ••••••••")
    else:
        lines.append("api_key: ••••••••")
    lines.append("Content-Type: application/json")
    lines.append("")
    lines.append("# Message headers for this recipient")
    env = draft.envelopes[envelope] if 0 <= envelope < len(draft.envelopes) else None
    lines.append(f"From: {draft.sender.display()}")
    if env is not None:
        lines.append("To: " + ", ".join(a.display() for a in env.to))
        if env.cc:
            lines.append("Cc: " + ", ".join(a.display() for a in env.cc))
    if draft.reply_to:
        lines.append(f"Reply-To: {draft.reply_to}")
    attributes = env.attributes if env is not None else {}
    lines.append(f"Subject: {substitute(draft.subject, attributes)}")
    lines.append("X-APIHEADER: nd-… (a fresh correlation token for every send)")
    if draft.tags:
        lines.append("X-TAGS: " + ", ".join(draft.tags))
    if env is not None:
        for name, value in env.headers.items():
            lines.append(f"{name}: {value}")
    return "\n".join(lines) + "\n"


class RenderWorker(QObject):
    """Lives in the render thread; renders the newest request it finds."""

    #: A :class:`PreviewFrame` is ready.
    frame_ready = Signal(object)
    #: A :class:`PreviewDetails` is ready.
    details_ready = Signal(object)

    def __init__(self, slot: _LatestSlot) -> None:
        super().__init__()
        self._slot = slot
        self._cache_key: tuple[str, str] | None = None
        self._cache_html = ""

    def _rendered(self, draft: Draft) -> str:
        key = (draft.body, str(draft.body_format))
        if key != self._cache_key:
            self._cache_html = render_html(draft)
            self._cache_key = key
        return self._cache_html

    @Slot()
    def work(self) -> None:
        """Render the newest request, if there is one (extra wake-ups return at once)."""
        request = self._slot.take()
        if request is None:
            return
        try:
            self._render(request)
        except Exception:  # a broken draft must never take the render thread down
            log.exception("preview render failed")

    def _render(self, request: RenderRequest) -> None:
        started = time.perf_counter()
        draft = request.draft
        sent_html = self._rendered(draft)
        envelopes = draft.envelopes
        index = min(max(request.envelope, 0), max(0, len(envelopes) - 1))
        html = preview_html(draft, index, sent_html)
        env = envelopes[index] if envelopes else None
        attributes = env.attributes if env is not None else {}
        frame = PreviewFrame(
            generation=request.generation,
            envelope=index,
            html=html,
            subject=substitute(draft.subject, attributes),
            sender=draft.sender.display(),
            to=", ".join(a.display() for a in env.to) if env is not None else "",
            sent_bytes=len(sent_html.encode("utf-8")),
            remote_count=len(remote_urls(html)),
            render_ms=(time.perf_counter() - started) * 1000,
            created=request.created,
        )
        emit(self.frame_ready, frame)
        if self._slot.pending():
            return  # a newer draft is waiting: its details will be computed instead
        target = request.target
        problems = run_checks(
            draft, api_version=target.api_version, live=target.live, rendered_html=sent_html
        )
        payload = build_payload(draft, target.api_version, sent_html)
        details = PreviewDetails(
            generation=request.generation,
            text=html_to_text(html),
            request_json=json.dumps(_display_payload(payload), indent=2, ensure_ascii=False),
            headers=describe_headers(draft, index, target),
            problems=tuple(problems),
            credits=draft.credit_count(),
        )
        emit(self.details_ready, details)


class _LatestSlot:
    """Holds only the newest request; thread-safe."""

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


class PreviewRenderer(QObject):
    """GUI-side handle of the render thread: :meth:`submit` drafts, get frames back."""

    frame_ready = Signal(object)
    details_ready = Signal(object)
    _wake = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._slot = _LatestSlot()
        self._thread = QThread()
        self._thread.setObjectName("preview-render")
        self._worker = RenderWorker(self._slot)
        self._worker.moveToThread(self._thread)
        self._wake.connect(self._worker.work)
        self._worker.frame_ready.connect(self._on_frame)
        self._worker.details_ready.connect(self._on_details)
        self._thread.finished.connect(self._worker.deleteLater)
        self._thread.start()
        self._running = True

    def submit(self, request: RenderRequest) -> None:
        """Render ``request`` soon, replacing any request not yet started."""
        if not self._running:
            return
        self._slot.put(request)
        emit(self._wake)

    @Slot(object)
    def _on_frame(self, frame: PreviewFrame) -> None:
        emit(self.frame_ready, frame)

    @Slot(object)
    def _on_details(self, details: PreviewDetails) -> None:
        emit(self.details_ready, details)

    def shutdown(self, timeout_ms: int = 3000) -> None:
        """Stop the render thread and wait for it (bounded)."""
        if not self._running:
            return
        self._running = False
        self._slot.take()
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.warning("the preview thread did not stop within %d ms", timeout_ms)
