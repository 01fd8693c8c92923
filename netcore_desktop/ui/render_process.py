"""Rendering the preview in a helper process, so the GUI thread never waits for the GIL.

Measured on the 50 KB benchmark message: Markdown holds Python's global interpreter lock
for up to ~110 ms at a time (long regular-expression passes over the whole text), and the
CSS inliner for up to ~140 ms. Run in a thread of the GUI process, that freezes typing just
as long. In a separate process the GUI thread only waits for a pipe, which releases the lock.

This module has no Qt import: the helper process loads only the core renderer. Its
:class:`RenderProcess` is driven from the preview thread (:mod:`.render_worker`); the
functions :func:`render_frame` and :func:`render_details` are the work itself and also
serve as the in-process fallback when no helper process can be started.

Attachments are replaced by :class:`SizedAttachment` stand-ins before a draft crosses the
pipe: the checks need their names and sizes, the preview never needs their bytes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from netcore_desktop.core.contract import SEND_PATHS, ApiVersion
from netcore_desktop.core.message import Attachment, Draft

if TYPE_CHECKING:
    import subprocess
    from multiprocessing.connection import Connection

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
    #: This envelope's Cc and the message's Bcc, as shown beside To ("" when none).
    cc: str = ""
    bcc: str = ""


@dataclass(frozen=True)
class PreviewDetails:
    """The slower parts: plain text, request, headers, checks."""

    generation: int
    text: str
    request_json: str
    headers: str
    problems: tuple[Any, ...]
    credits: int


@dataclass(frozen=True)
class SizedAttachment:
    """An attachment's name and size without its bytes (what the preview and checks need)."""

    name: str
    size: int
    data: bytes = b""

    def to_json(self) -> dict[str, str]:
        """The request's attachment object, its content shortened for reading."""
        return {"name": self.name, "content": f"<{self.size:,} bytes, base64-encoded when sent>"}


def _sized(items: tuple[Attachment, ...]) -> tuple[Attachment, ...]:
    return tuple(
        cast(Attachment, SizedAttachment(a.name, a.size)) for a in items
    )


def lighten(draft: Draft) -> Draft:
    """``draft`` with attachment bytes left out (names and sizes kept)."""
    if not draft.attachments and not any(e.attachments for e in draft.envelopes):
        return draft
    envelopes = tuple(
        replace(e, attachments=_sized(e.attachments)) if e.attachments else e
        for e in draft.envelopes
    )
    return replace(draft, attachments=_sized(draft.attachments), envelopes=envelopes)


def _display_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload with real attachment contents shortened, for reading on screen."""

    def shorten(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            content = str(item.get("content", ""))
            if not content.startswith("<"):
                content = f"<{len(content):,} characters of base64>"
            out.append({**item, "content": content})
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
    from netcore_desktop.core.render import substitute

    lines: list[str] = []
    path = SEND_PATHS.get(target.api_version, "/v6/mail/send")
    lines.append("# HTTP request")
    lines.append(f"POST {target.base_url.rstrip('/')}{path}")
    if target.api_version is ApiVersion.V6:
        lines.append("Authorization: Bearer ****")
    else:
        lines.append("api_key: ****")
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


def render_frame(request: RenderRequest) -> PreviewFrame:
    """The sent HTML with one envelope's values filled in, plus subject and addresses."""
    from netcore_desktop.core.render import preview_html, remote_urls, render_html, substitute

    started = time.perf_counter()
    draft = request.draft
    sent_html = render_html(draft)
    envelopes = draft.envelopes
    index = min(max(request.envelope, 0), max(0, len(envelopes) - 1))
    html = preview_html(draft, index, sent_html)
    env = envelopes[index] if envelopes else None
    attributes = env.attributes if env is not None else {}
    return PreviewFrame(
        generation=request.generation,
        envelope=index,
        html=html,
        subject=substitute(draft.subject, attributes),
        sender=draft.sender.display(),
        to=", ".join(a.display() for a in env.to) if env is not None else "",
        sent_bytes=len(sent_html.encode("utf-8", "replace")),
        remote_count=len(remote_urls(html)),
        render_ms=(time.perf_counter() - started) * 1000,
        created=request.created,
        cc=", ".join(a.display() for a in env.cc) if env is not None else "",
        bcc=", ".join(a.display() for a in draft.bcc),
    )


def render_details(request: RenderRequest) -> PreviewDetails:
    """Plain text, the request JSON, headers and the pre-send checks for one envelope."""
    from netcore_desktop.core.checks import run_checks
    from netcore_desktop.core.message import build_payload
    from netcore_desktop.core.render import html_to_text, preview_html, render_html

    draft = request.draft
    target = request.target
    sent_html = render_html(draft)
    index = min(max(request.envelope, 0), max(0, len(draft.envelopes) - 1))
    problems = run_checks(
        draft, api_version=target.api_version, live=target.live, rendered_html=sent_html
    )
    payload = build_payload(draft, target.api_version, sent_html)
    return PreviewDetails(
        generation=request.generation,
        text=html_to_text(preview_html(draft, index, sent_html)),
        request_json=json.dumps(_display_payload(payload), indent=2, ensure_ascii=False),
        headers=describe_headers(draft, index, request.target),
        problems=tuple(problems),
        credits=draft.credit_count(),
    )


_HANDLERS = {"frame": render_frame, "details": render_details}


def serve(recv: Connection, send: Connection) -> None:
    """The helper's loop: answer ``(kind, request)`` messages until ``None`` or end of input."""
    while True:
        try:
            message = recv.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        kind, request = message
        try:
            send.send(("ok", _HANDLERS[kind](request)))
        except Exception as exc:  # report, keep serving
            send.send(("error", f"{type(exc).__name__}: {exc}"))


def main() -> None:
    """Entry point of the helper process.

    Requests arrive on standard input and answers leave on standard output; anything else
    printed goes to standard error, so it can never corrupt the channel.
    """
    from multiprocessing.connection import Connection

    recv = Connection(os.dup(0), writable=False)
    send = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Load the renderer and the checks now, while the window is still starting.
    import netcore_desktop.core.checks
    import netcore_desktop.core.render  # noqa: F401

    serve(recv, send)


#: The argument that makes ``netcore-desktop`` run as the preview helper (see
#: :func:`helper_command`); not a user-facing option.
HELPER_FLAG = "--preview-helper"


def helper_command() -> list[str]:
    """The command line that starts the helper process.

    From an installed package or a checkout, this Python imports this module by its real
    name (not as ``__main__``), so the classes it pickles are found under the same module
    path on both sides. In a frozen build (PyInstaller) ``sys.executable`` is the app
    itself, which takes no ``-c``: it is started with :data:`HELPER_FLAG` instead, which
    its entry point hands to :func:`main` before anything else is loaded.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, HELPER_FLAG]
    return [sys.executable, "-c", f"import {__name__} as m; m.main()"]


class RenderError(Exception):
    """The helper process could not render (or is gone)."""


class RenderProcess:
    """A helper process running :func:`main`; one call at a time.

    It is a plain subprocess of this Python (not ``multiprocessing``), so the helper never
    imports the window's main module or Qt, and it ends by itself when this process
    closes its end of the pipe.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._send: Connection | None = None
        self._recv: Connection | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the helper process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the helper process."""
        import subprocess
        from multiprocessing.connection import Connection

        process = subprocess.Popen(
            helper_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        assert process.stdin is not None and process.stdout is not None
        self._send = Connection(os.dup(process.stdin.fileno()), readable=False)
        self._recv = Connection(os.dup(process.stdout.fileno()), writable=False)
        process.stdin.close()
        process.stdout.close()
        self._process = process

    def call(self, kind: str, request: RenderRequest) -> Any:
        """Run ``kind`` ("frame" or "details") in the helper; raises :class:`RenderError`."""
        with self._lock:
            try:
                if not self.running:
                    self._stop_locked()
                    self.start()
                assert self._send is not None and self._recv is not None
                self._send.send((kind, request))
                status, result = self._recv.recv()
            except (EOFError, OSError) as exc:
                self._stop_locked()
                raise RenderError(f"the preview helper stopped: {exc}") from exc
        if status != "ok":
            raise RenderError(str(result))
        return result

    def _stop_locked(self, timeout: float = 2.0) -> None:
        send, recv, process = self._send, self._recv, self._process
        self._send = self._recv = self._process = None
        if send is not None:
            with contextlib.suppress(OSError):
                send.send(None)
            send.close()
        if recv is not None:
            recv.close()
        if process is not None:
            import subprocess

            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the helper to end and wait for it (killed after ``timeout`` seconds)."""
        if not self._lock.acquire(timeout=timeout):
            # A call is waiting for an answer that does not come: end the helper, which
            # wakes the waiting call with an error, then finish in order.
            process = self._process
            if process is not None:
                process.kill()
            self._lock.acquire()
        try:
            self._stop_locked(timeout)
        finally:
            self._lock.release()

