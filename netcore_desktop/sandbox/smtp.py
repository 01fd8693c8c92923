"""The sandbox's SMTP relay (``shared/netcore-api.md`` §7, §9), built on aiosmtpd.

It takes AUTH PLAIN or LOGIN with the sandbox's SMTP user and password (refusing others
with 535), requires authentication before ``MAIL``, and stores every message it is given
beside the API ones (transport ``smtp``), with ``X-APIHEADER`` as its correlation token and
``X-TAGS`` as its tags. The final answer to ``DATA`` names the message id:
``250 2.0.0 Ok: queued as <32 hex>``.

Authentication without TLS is allowed because the relay only ever listens on loopback.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import time
import weakref
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from netcore_desktop.core.contract import SANDBOX_MAX_BODY_BYTES
from netcore_desktop.sandbox.service import SandboxService

log = logging.getLogger(__name__)

#: The name the relay greets with; a fixed name avoids a slow reverse DNS lookup on start.
HOSTNAME = "sandbox.localhost"


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
            return await self._store(envelope)
        finally:
            self.busy -= 1

    async def _store(self, envelope: Envelope) -> str:
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
                str(envelope.mail_from or ""), [str(r) for r in envelope.rcpt_tos], raw
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
            return AuthResult(success=True)
        self.service.counters["smtp_535"] += 1
        return AuthResult(success=False, handled=False)


class SmtpRelay:
    """The running relay: its listening server and its open sessions."""

    def __init__(self, handler: _Handler) -> None:
        self.handler = handler
        self.sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
        self.server: asyncio.Server | None = None

    async def close(self, grace_s: float) -> None:
        """Stop listening, let messages being stored finish, then end every session.

        A client whose message was not yet accepted (no final 250) sees the connection
        close, so it knows the message was not taken: nothing accepted is lost.
        """
        if self.server is not None:
            self.server.close()
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
    service: SandboxService, sock: socket.socket, user: str, password: str
) -> SmtpRelay:
    """Serve the relay on the already bound ``sock`` in the running loop."""
    loop = asyncio.get_running_loop()
    relay = SmtpRelay(_Handler(service))
    authenticator = _Authenticator(service, user, password)

    def factory() -> SMTP:
        session = _LoopbackSMTP(
            relay.handler,
            hostname=HOSTNAME,
            ident="Netcore Desktop sandbox",
            data_size_limit=SANDBOX_MAX_BODY_BYTES,
            enable_SMTPUTF8=True,
            auth_required=True,
            authenticator=authenticator,
            loop=loop,
        )
        relay.sessions.add(session)
        return session

    relay.server = await loop.create_server(factory, sock=sock)
    return relay
