"""The sandbox's SMTP relay (``shared/netcore-api.md`` §7, §9), built on aiosmtpd.

It takes AUTH PLAIN or LOGIN with the sandbox's SMTP user and password (refusing others
with 535), requires authentication before ``MAIL``, and stores every message it is given
beside the API ones (transport ``smtp``), with ``X-APIHEADER`` as its correlation token and
``X-TAGS`` as its tags. The final answer to ``DATA`` names the message id:
``250 2.0.0 Ok: queued as <32 hex>``.

Authentication without TLS is allowed because the relay only ever listens on loopback.
Given a certificate and key (:func:`server_tls_context`), the relay also offers STARTTLS on
its port and serves implicit TLS (SMTPS) on a second port; each stored message records the
TLS version it arrived over (``tls``, ``None`` when unencrypted). The certificate and key
are loaded with the standard :mod:`ssl` module only. The ``drop_rate`` fault closes that
fraction of new connections before the greeting; ``fail_rate`` answers ``DATA`` with 451.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import ssl
import time
import weakref
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, TLSSetupException

from netcore_desktop.core.contract import SANDBOX_MAX_BODY_BYTES
from netcore_desktop.sandbox.service import SandboxService

log = logging.getLogger(__name__)

#: The name the relay greets with; a fixed name avoids a slow reverse DNS lookup on start.
HOSTNAME = "sandbox.localhost"

#: How long a client may take over the TLS handshake on the SMTPS port.
TLS_HANDSHAKE_TIMEOUT_S = 10.0


def server_tls_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """The relay's TLS settings from a PEM certificate (chain) and its unencrypted key.

    Raises ``ValueError`` naming the files when they cannot be read or do not match.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(Path(cert).expanduser(), Path(key).expanduser())
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"The SMTP TLS certificate {str(cert)!r} and key {str(key)!r} cannot be "
            f"loaded: {exc}"
        ) from exc
    return context


def _tls_version(server: SMTP) -> str | None:
    """The TLS version of ``server``'s connection (STARTTLS or SMTPS), or ``None``."""
    transport = server.transport
    ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
    if isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return ssl_object.version()
    return None


class _QuietAiosmtpd(logging.Filter):
    """Drops aiosmtpd's deprecation warning, which it logs on every successful login."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


# aiosmtpd logs every command and reply at INFO/DEBUG (masking AUTH data itself): noise in
# the app's log, so only its warnings get through.
_aiosmtpd_log = logging.getLogger("mail.log")
_aiosmtpd_log.setLevel(logging.WARNING)
_aiosmtpd_log.addFilter(_QuietAiosmtpd())


class _LoopbackSMTP(SMTP):
    """aiosmtpd's SMTP, allowing AUTH without TLS because it only listens on loopback.

    Passing ``auth_require_tls=False`` would do the same but warns on every connection;
    the flag is therefore cleared after construction.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, auth_require_tls=True, **kwargs)
        self._auth_require_tls = False

    async def handle_exception(self, error: Exception) -> str:
        """A failed STARTTLS handshake is one line in the log, not a traceback.

        A client refusing the relay's certificate is expected (the app must do so when it
        does not trust the CA); aiosmtpd closes that connection itself.
        """
        if isinstance(error, TLSSetupException):
            log.warning(
                "%r: the STARTTLS handshake failed (%s)",
                self.session.peer if self.session else None,
                error.__cause__ or error,
            )
            return "454 4.7.0 TLS handshake failed"
        return await super().handle_exception(error)


class _Dropped(asyncio.Protocol):
    """A connection the ``drop_rate`` fault closes as soon as it opens, with no greeting."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class _Handler:
    """Stores each message through the service and answers with its id."""

    def __init__(self, service: SandboxService) -> None:
        self.service = service
        #: Messages being stored right now; stopping waits for them.
        self.busy = 0

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.busy += 1
        try:
            return await self._store(envelope, _tls_version(server))
        finally:
            self.busy -= 1

    async def _store(self, envelope: Envelope, tls: str | None) -> str:
        faults = self.service.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.smtp_fails():
            self.service.counters["smtp_451"] += 1
            return "451 4.3.0 Injected failure (sandbox fail_rate), try again later"
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        try:
            rec = await self.service.record_smtp(
                str(envelope.mail_from or ""), [str(r) for r in envelope.rcpt_tos], raw,
                tls=tls,
            )
        except Exception:
            log.exception("The sandbox could not store an SMTP message")
            self.service.counters["smtp_451"] += 1
            return "451 4.3.0 The sandbox could not store the message"
        self.service.counters["smtp_250"] += 1
        return f"250 2.0.0 Ok: queued as {rec.message_id}"


class _Authenticator:
    """Checks AUTH PLAIN / LOGIN credentials against the sandbox's SMTP user and password."""

    def __init__(self, service: SandboxService, user: str, password: str) -> None:
        self.service = service
        self._user = user.encode("utf-8")
        self._password = password.encode("utf-8")

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        # Both compared every time, so a wrong user and a wrong password take as long.
        good_user = hmac.compare_digest(data.login, self._user)
        good_password = hmac.compare_digest(data.password, self._password)
        if good_user and good_password:
            # Counted like the refusals, so a test can tell whether a password was sent.
            self.service.counters["smtp_235"] += 1
            return AuthResult(success=True)
        self.service.counters["smtp_535"] += 1
        return AuthResult(success=False, handled=False)


class SmtpRelay:
    """The running relay: its listening servers (SMTP, and SMTPS) and its open sessions."""

    def __init__(self, handler: _Handler) -> None:
        self.handler = handler
        self.sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.servers: list[asyncio.Server] = []

    async def close(self, grace_s: float) -> None:
        """Stop listening, let messages being stored finish, then end every session.

        A client whose message was not yet accepted (no final 250) sees the connection
        close, so it knows the message was not taken: nothing accepted is lost.
        """
        for server in self.servers:
            server.close()
        deadline = time.monotonic() + grace_s
        while self.handler.busy and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for session in list(self.sessions):
            transport = session.transport
            if transport is not None:
                transport.close()
        # Closing a transport cancels its session task on the next loop turns.
        for _ in range(3):
            await asyncio.sleep(0)


async def start_smtp(
    service: SandboxService,
    sock: socket.socket,
    user: str,
    password: str,
    *,
    tls_context: ssl.SSLContext | None = None,
    smtps_sock: socket.socket | None = None,
) -> SmtpRelay:
    """Serve the relay on the already bound ``sock`` in the running loop.

    With ``tls_context`` the relay offers STARTTLS on ``sock`` and, when ``smtps_sock`` is
    given, speaks TLS from the first byte on it (implicit TLS, the port-465 convention).
    """
    loop = asyncio.get_running_loop()
    relay = SmtpRelay(_Handler(service))
    authenticator = _Authenticator(service, user, password)

    def factory(starttls: ssl.SSLContext | None) -> asyncio.Protocol:
        if service.faults.smtp_drops():
            service.counters["smtp_dropped"] += 1
            return _Dropped()
        session = _LoopbackSMTP(
            relay.handler,
            hostname=HOSTNAME,
            ident="Netcore Desktop sandbox",
            data_size_limit=SANDBOX_MAX_BODY_BYTES,
            enable_SMTPUTF8=True,
            auth_required=True,
            authenticator=authenticator,
            tls_context=starttls,
            loop=loop,
        )
        relay.sessions.add(session)
        return session

    relay.servers.append(await loop.create_server(lambda: factory(tls_context), sock=sock))
    if tls_context is not None and smtps_sock is not None:
        # Already inside TLS there, so no STARTTLS is offered on this port.
        relay.servers.append(
            await loop.create_server(
                lambda: factory(None),
                sock=smtps_sock,
                ssl=tls_context,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S,
            )
        )
    return relay
