"""Running the sandbox inside another process: :class:`EmbeddedSandbox`.

The HTTP side (uvicorn) and the SMTP relay (aiosmtpd) share one asyncio loop in one
background thread, so the desktop app and the tests can start a sandbox, talk to it over
real sockets, and stop it, each in well under a second. The listening sockets are bound in
:meth:`EmbeddedSandbox.start` itself, so a port that is taken fails there, in the caller's
thread, and port 0 is resolved before ``start`` returns. With a TLS certificate and key in
the config, the relay also offers STARTTLS and listens for implicit TLS on
:attr:`EmbeddedSandbox.smtps_port`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import shutil
import socket
import ssl
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import uvicorn

from netcore_desktop.sandbox.api import SandboxApp
from netcore_desktop.sandbox.config import SandboxConfig
from netcore_desktop.sandbox.faults import Faults
from netcore_desktop.sandbox.service import SandboxService
from netcore_desktop.sandbox.smtp import server_tls_context, start_smtp
from netcore_desktop.sandbox.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

#: File name of the store inside the data directory.
DB_NAME: Final = "sandbox.sqlite3"

#: How long start() waits for the servers before giving up.
START_TIMEOUT_S: Final = 10.0

#: How long stop() lets in-flight requests finish.
STOP_GRACE_S: Final = 3


class _Unchanged:
    """Marks a :meth:`EmbeddedSandbox.set_faults` argument that was not given."""

    def __repr__(self) -> str:
        return "UNCHANGED"


#: Default of every :meth:`EmbeddedSandbox.set_faults` argument: leave that setting as it is.
UNCHANGED: Final = _Unchanged()


def _http_impl() -> str:
    # httptools parses HTTP several times faster than h11; use it when it is installed.
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (not 0): only then does asyncio set TCP_NODELAY on each
    # accepted connection. Without it every answer waits ~40 ms for a delayed ACK, because
    # uvicorn writes the status line and the body separately.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass(frozen=True)
class _Listeners:
    """The bound sockets one sandbox serves on, and the relay's TLS settings."""

    http: socket.socket
    smtp: socket.socket
    #: The implicit-TLS SMTP port, with ``tls``; ``None`` without a certificate.
    smtps: socket.socket | None = None
    tls: ssl.SSLContext | None = None

    def close(self) -> None:
        """Close every socket (the sandbox did not start)."""
        for sock in (self.http, self.smtp, self.smtps):
            if sock is not None:
                sock.close()


class EmbeddedSandbox:
    """A sandbox (HTTP API + SMTP relay + store) running in a background thread.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. Everything but
    ``start``/``stop`` may be called from any thread while it runs.
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._service: SandboxService | None = None
        self._store: Store | None = None
        self._temp_dir: Path | None = None
        self._data_dir: Path | None = None
        self._port = 0
        self._smtp_port = 0
        self._smtps_port: int | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> EmbeddedSandbox:
        """Start the servers; return once they listen. Raises ``OSError`` if a port is taken.

        Raises ``ValueError`` when the SMTP TLS certificate or key cannot be loaded.
        """
        if self._thread is not None:
            raise RuntimeError("The sandbox is already running.")
        cfg = self.config
        tls_context: ssl.SSLContext | None = None
        if cfg.smtp_tls_cert is not None and cfg.smtp_tls_key is not None:
            tls_context = server_tls_context(cfg.smtp_tls_cert, cfg.smtp_tls_key)
        ports = [cfg.port, cfg.smtp_port] + ([cfg.smtps_port] if tls_context else [])
        socks: list[socket.socket] = []
        try:
            for port in ports:
                socks.append(_bind(cfg.host, port))
        except OSError:
            for sock in socks:
                sock.close()
            raise
        listeners = _Listeners(socks[0], socks[1], socks[2] if tls_context else None,
                               tls_context)
        self._port = listeners.http.getsockname()[1]
        self._smtp_port = listeners.smtp.getsockname()[1]
        self._smtps_port = None if listeners.smtps is None else listeners.smtps.getsockname()[1]
        try:
            if cfg.data_dir is None:
                self._temp_dir = Path(tempfile.mkdtemp(prefix="netcore-sandbox-"))
                self._data_dir = self._temp_dir
            else:
                self._data_dir = Path(cfg.data_dir).expanduser()
            self._store = Store(self._data_dir / DB_NAME)
            faults = Faults(
                fail_rate=cfg.fail_rate,
                latency_ms=cfg.latency_ms,
                drop_rate=cfg.drop_rate,
                daily_limit=cfg.daily_limit,
                seed=cfg.seed,
            )
            self._service = SandboxService(self._store, faults)
        except BaseException:
            listeners.close()
            self._cleanup()
            raise
        app = SandboxApp(self._service, cfg.api_key, self._smtp_port, self._smtps_port)
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(
            target=self._run, args=(app, listeners),
            name="netcore-sandbox", daemon=True,
        )
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._error is not None:
            error = self._error
            self.stop()
            raise RuntimeError("The sandbox could not start.") from error
        log.info(
            "Sandbox listening on %s (SMTP port %d, SMTPS port %s)",
            self.base_url, self._smtp_port, self._smtps_port or "off",
        )
        return self

    def _run(self, app: SandboxApp, listeners: _Listeners) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(app, listeners))
        except BaseException as exc:
            log.exception("The sandbox stopped with an error")
            self._error = exc
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, app: SandboxApp, listeners: _Listeners) -> None:
        assert self._service is not None
        cfg = self.config
        relay = await start_smtp(
            self._service, listeners.smtp, cfg.smtp_user, cfg.smtp_password,
            tls_context=listeners.tls, smtps_sock=listeners.smtps,
        )
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                http=_http_impl(),
                ws="none",
                lifespan="off",
                log_config=None,
                access_log=False,
                server_header=False,
                timeout_graceful_shutdown=STOP_GRACE_S,
            )
        )
        self._server = server
        serving = asyncio.create_task(server.serve(sockets=[listeners.http]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.002)
        if not serving.done():
            self._ready.set()
        try:
            await serving
        finally:
            await relay.close(STOP_GRACE_S)
            # Whatever is left (an idle session's task) holds nothing that was accepted.
            current = asyncio.current_task()
            leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
            for task in leftover:
                task.cancel()
            await asyncio.gather(*leftover, return_exceptions=True)

    def stop(self) -> None:
        """Stop both servers after in-flight requests are answered, and close the store.

        Every request that was answered is in the store. A temporary data directory (no
        ``data_dir`` in the config) is removed.
        """
        thread, loop, server = self._thread, self._loop, self._server
        if thread is None:
            return
        if server is not None and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(setattr, server, "should_exit", True)
        thread.join(STOP_GRACE_S + 5)
        if thread.is_alive():
            log.error("The sandbox thread did not stop in time")
        self._cleanup()
        log.info("Sandbox stopped")

    def _cleanup(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
        self._thread = self._loop = self._server = None
        self._store = self._service = None
        self._temp_dir = None

    def __enter__(self) -> EmbeddedSandbox:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where it listens --------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the servers are up."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def host(self) -> str:
        """The loopback address both servers listen on."""
        return self.config.host

    @property
    def port(self) -> int:
        """The HTTP port (known after :meth:`start`, even when the config said 0)."""
        return self._port

    @property
    def smtp_port(self) -> int:
        """The SMTP relay's port (known after :meth:`start`)."""
        return self._smtp_port

    @property
    def smtps_port(self) -> int | None:
        """The implicit-TLS (SMTPS) port, known after :meth:`start`; ``None`` without TLS."""
        return self._smtps_port

    @property
    def smtp_tls(self) -> bool:
        """Whether the relay speaks TLS (STARTTLS on :attr:`smtp_port`, and SMTPS)."""
        return self.config.smtp_tls

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the base URL a profile uses to reach this sandbox."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def api_key(self) -> str:
        """The key the API accepts."""
        return self.config.api_key

    @property
    def smtp_user(self) -> str:
        """The SMTP relay's user name."""
        return self.config.smtp_user

    @property
    def smtp_password(self) -> str:
        """The SMTP relay's password."""
        return self.config.smtp_password

    @property
    def data_dir(self) -> Path | None:
        """The directory holding the store while running."""
        return self._data_dir

    @property
    def db_path(self) -> Path | None:
        """The store's SQLite file while running."""
        return None if self._data_dir is None else self._data_dir / DB_NAME

    # -- the store and the faults, from Python -----------------------------------------------

    def _running_service(self) -> SandboxService:
        if self._service is None:
            raise RuntimeError("The sandbox is not running.")
        return self._service

    def _on_loop(self, coro: Any) -> Any:
        service = self._running_service()
        loop = self._loop
        assert loop is not None and service is not None
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, loop)
        return future.result(30)

    def messages(self, token: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Stored messages, newest first (the ``/sandbox/messages`` entries).

        With ``token``, only messages carrying that correlation token (``token_to``/``cc``/
        ``bcc`` or ``X-APIHEADER``).
        """
        return self._running_service().messages(token, limit)

    def message(self, message_id: str) -> dict[str, Any] | None:
        """One stored message by id, or ``None``."""
        return self._running_service().message(message_id)

    def clear_messages(self) -> int:
        """Delete every stored message; return how many there were."""
        count: int = self._on_loop(self._running_service().clear_messages())
        return count

    def reset(self) -> None:
        """Forget messages, templates, suppressions and counters; faults back to the config."""
        self._on_loop(self._running_service().reset())

    def suppress(self, *emails: str) -> list[str]:
        """Put addresses on the suppression list (sends to them are then dropped)."""
        added: list[str] = self._on_loop(self._running_service().suppress("email", emails))
        return added

    def events(self, **filters: Any) -> list[dict[str, Any]]:
        """Synthesised delivery events, as ``/v5.1/events`` gives them (first 1,000)."""
        from netcore_desktop.sandbox.service import EventQuery

        found, _ = self._running_service().events(EventQuery(limit=1000, **filters))
        return found

    def stats(self) -> dict[str, Any]:
        """Answers per HTTP status (and SMTP outcome) since start or the last reset."""
        service = self._running_service()
        return {
            "responses": dict(service.counters),
            "stored_messages": service.message_count(),
            "sent_today": service.day_count,
            "daily_limit": service.faults.daily_limit,
            "store": {"commits": service.store.commits, "writes": service.store.jobs},
        }

    def faults(self) -> dict[str, Any]:
        """The current fault settings (the ``/sandbox/faults`` JSON)."""
        return self._running_service().faults.snapshot()

    def set_faults(
        self,
        *,
        fail_rate: float | _Unchanged = UNCHANGED,
        latency_ms: int | _Unchanged = UNCHANGED,
        drop_rate: float | _Unchanged = UNCHANGED,
        force_status: tuple[int, int] | _Unchanged | None = UNCHANGED,
        daily_limit: int | _Unchanged | None = UNCHANGED,
        seed: int | _Unchanged | None = UNCHANGED,
    ) -> dict[str, Any]:
        """Change some fault settings now; return them all. Raises ``ValueError`` if invalid.

        ``force_status`` is ``(code, count)``: the next ``count`` send calls answer ``code``
        (``None`` clears it). ``daily_limit`` ``None`` means no limit.
        """
        changes: dict[str, Any] = {}
        for name, value in (
            ("fail_rate", fail_rate),
            ("latency_ms", latency_ms),
            ("drop_rate", drop_rate),
            ("daily_limit", daily_limit),
            ("seed", seed),
        ):
            if not isinstance(value, _Unchanged):
                changes[name] = value
        if not isinstance(force_status, _Unchanged):
            changes["force_status"] = (
                None
                if force_status is None
                else {"code": force_status[0], "count": force_status[1]}
            )
        return self._running_service().faults.update(changes)

    def force_status(self, code: int, count: int = 1) -> None:
        """Make the next ``count`` send calls answer ``code`` (200, 202 or 400-599)."""
        self.set_faults(force_status=(code, count))

    def reset_faults(self) -> None:
        """Fault settings back to those of the config; no forced status."""
        self._running_service().faults.reset()
