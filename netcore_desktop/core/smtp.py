"""The SMTP relay transport: the same draft, built as MIME and sent over SMTP.

Contract ``shared/netcore-api.md`` §7: over SMTP the app builds each message itself. One
message per envelope: ``multipart/alternative`` with a plain-text part
(:func:`~netcore_desktop.core.render.html_to_text`) and the HTML part (the very output of
:func:`~netcore_desktop.core.render.render_html` that the API would send), inside
``multipart/mixed`` when there are attachments. SMTP has no server-side ``attributes``, so the
``[%KEY%]`` placeholders are filled here, per envelope, exactly as Netcore would fill them
(verbatim). To and Cc are visible headers; Bcc addresses are envelope recipients only. The
correlation token travels as ``X-APIHEADER`` and the tags as ``X-TAGS``.

:class:`SmtpTransport` speaks STARTTLS (587, 25, 2525) or implicit TLS (465) and logs in with
AUTH PLAIN/LOGIN. It refuses to send a password over an unencrypted connection to anything but
this computer. The only plaintext fallback is a loopback relay that offers no STARTTLS at all
(the offline sandbox without a certificate); a STARTTLS that is offered and then fails, e.g.
on a certificate this computer does not trust, is never bypassed, not even on loopback: a
loopback port may be a tunnel to a real relay. Every message gets an
:class:`~netcore_desktop.core.client.ApiResult`, like an API send.

A connection that fails before any message was offered (refused, closed or a 4xx greeting,
before ``MAIL FROM``) is tried again with the API's backoff
(:class:`~netcore_desktop.core.client.RetryPolicy`); nothing is ever retried once a
transaction has begun, since the relay may have taken the message.
"""

from __future__ import annotations

import contextlib
import email.policy
import logging
import mimetypes
import random
import smtplib
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Final

from netcore_desktop.core.client import ApiResult, RequestRecord, RetryPolicy
from netcore_desktop.core.history import Outcome
from netcore_desktop.core.message import Address, Attachment, Draft, Envelope
from netcore_desktop.core.profiles import SmtpSecurity, is_loopback_host
from netcore_desktop.core.render import html_to_text, render_html, substitute

log = logging.getLogger(__name__)

#: Headers that the message builder sets itself; an envelope header of the same name
#: replaces the built one rather than adding a second copy.
_SINGLE_HEADERS: Final = frozenset(
    {"from", "to", "cc", "subject", "reply-to", "message-id", "date", "x-apiheader", "x-tags"}
)

#: Ports whose convention is STARTTLS, and the implicit-TLS port (contract §7).
STARTTLS_PORTS: Final = frozenset({25, 587, 2525})
IMPLICIT_TLS_PORT: Final = 465


class SmtpSecurityError(ValueError):
    """The connection settings would expose the password; nothing was sent."""


# --- building the message ------------------------------------------------------------------


@dataclass(frozen=True)
class MimeMessage:
    """One built message and who receives it."""

    message: EmailMessage
    #: Envelope sender (``MAIL FROM``).
    sender: str
    #: Every envelope recipient (``RCPT TO``): To, Cc, Bcc and the global Bcc.
    recipients: tuple[str, ...]
    #: The ``Message-ID`` header.
    message_id: str
    #: The correlation token (``X-APIHEADER``), empty when the envelope had none.
    token: str


def _header_address(addr: Address) -> HeaderAddress:
    try:
        return HeaderAddress(display_name=addr.name, addr_spec=addr.email)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"'{addr.email}' cannot be used in a mail header: {exc}") from exc


def _add_attachment(msg: EmailMessage, att: Attachment) -> None:
    ctype, encoding = mimetypes.guess_type(att.name)
    if ctype is None or encoding is not None:
        ctype = "application/octet-stream"
    maintype, subtype = ctype.split("/", 1)
    msg.add_attachment(att.data, maintype=maintype, subtype=subtype, filename=att.name)


def build_mime(
    draft: Draft,
    envelope: Envelope,
    html: str | None = None,
    *,
    message_id: str | None = None,
) -> MimeMessage:
    """The MIME message ``envelope`` of ``draft`` receives over SMTP.

    ``html`` is the rendered body from :func:`render_html` (rendered here when omitted);
    placeholders in it and in the subject are filled from the envelope's attributes.
    """
    body = render_html(draft) if html is None else html
    attributes = envelope.attributes
    filled_html = substitute(body, attributes)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = _header_address(draft.sender)
    if envelope.to:
        msg["To"] = [_header_address(a) for a in envelope.to]
    if envelope.cc:
        msg["Cc"] = [_header_address(a) for a in envelope.cc]
    msg["Subject"] = substitute(draft.subject, attributes)
    if draft.reply_to:
        msg["Reply-To"] = draft.reply_to
    msg["Date"] = formatdate(localtime=True)
    domain = draft.sender.email.rpartition("@")[2] or None
    mid = message_id or make_msgid(domain=domain)
    msg["Message-ID"] = mid
    if envelope.token:
        msg["X-APIHEADER"] = envelope.token
    if draft.tags:
        msg["X-TAGS"] = ", ".join(draft.tags)
    for name, value in envelope.headers.items():
        if name.lower() in _SINGLE_HEADERS or name in msg:
            del msg[name]
        msg[name] = value
    msg.set_content(html_to_text(filled_html), subtype="plain", charset="utf-8")
    if draft.amp.strip():
        # Clients that understand AMP pick this part; it sits between text and HTML so that
        # every other client still shows the HTML (the last part they understand).
        msg.add_alternative(substitute(draft.amp, attributes), subtype="x-amp-html")
    msg.add_alternative(filled_html, subtype="html", charset="utf-8")
    for att in (*draft.attachments, *envelope.attachments):
        _add_attachment(msg, att)
    recipients: dict[str, None] = {}
    for addr in (*envelope.to, *envelope.cc, *envelope.bcc, *draft.bcc):
        recipients.setdefault(addr.email, None)
    return MimeMessage(
        message=msg,
        sender=draft.sender.email,
        recipients=tuple(recipients),
        message_id=mid,
        token=envelope.token,
    )


def build_all(draft: Draft, html: str | None = None) -> list[MimeMessage]:
    """One message per envelope of ``draft``, rendering the body once."""
    body = render_html(draft) if html is None else html
    return [build_mime(draft, env, body) for env in draft.envelopes]


# --- the transport ------------------------------------------------------------------------


def smtp_url(host: str, port: int, security: SmtpSecurity) -> str:
    """``smtp://host:port``, or ``smtps://`` for implicit TLS: where a message goes."""
    scheme = "smtps" if security is SmtpSecurity.TLS else "smtp"
    return f"{scheme}://{host.strip()}:{port}"


def _reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {text}".strip()


class _Failure(Exception):
    """A failed transaction, already turned into an outcome and a sentence.

    ``transient`` marks a connection failure before any message was offered, which a new
    connection may cure; ``tries`` is how many connections were attempted.
    ``connection_lost`` marks a connection that broke before this message's content went
    out: the connection is of no more use, and the message may go on a new one.
    """

    def __init__(
        self,
        outcome: Outcome,
        meaning: str,
        reply: str = "",
        *,
        transient: bool = False,
        connection_lost: bool = False,
    ) -> None:
        super().__init__(meaning)
        self.outcome = outcome
        self.meaning = meaning
        self.reply = reply
        self.transient = transient
        self.connection_lost = connection_lost
        self.tries = 1


def _transient(exc: BaseException) -> bool:
    """Whether a failure while connecting (before ``MAIL FROM``) is worth another try."""
    if isinstance(exc, ssl.SSLError):
        return False  # a certificate or protocol mismatch will not change by itself
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500  # e.g. "421 too busy" as the greeting
    if isinstance(exc, smtplib.SMTPException):  # (a subclass of OSError)
        return isinstance(exc, smtplib.SMTPServerDisconnected)
    return isinstance(exc, OSError)  # refused, reset, unreachable, timed out


class SmtpTransport:
    """Sends :class:`MimeMessage` objects through one SMTP relay (contract §7).

    Raises :class:`SmtpSecurityError` at construction when the settings would send the
    password unencrypted to another computer. Each call to :meth:`send_messages` opens one
    connection, sends every message over it and closes it; calls are serialised, so one
    transport can be shared by threads.
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        password: str,
        security: SmtpSecurity = SmtpSecurity.STARTTLS,
        timeout: float = 30.0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        """Check the settings; no connection is made until the first send.

        ``ssl_context`` decides which certificates are trusted (default: the system's);
        ``retry`` how a failed connection is tried again (default: as the API client).
        """
        self.host = host.strip()
        self.port = int(port)
        self.user = user
        self.security = SmtpSecurity(security)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._rng = random.Random()
        self._password = password
        self._ssl_context = ssl_context
        self._loopback = is_loopback_host(self.host)
        self._lock = threading.Lock()
        if not self.host:
            raise SmtpSecurityError("The SMTP host is empty.")
        if self.security is SmtpSecurity.NONE and not self._loopback:
            raise SmtpSecurityError(
                f"Refusing to send the SMTP password unencrypted to {self.host}: choose "
                "STARTTLS (ports 587, 25, 2525) or TLS (port 465). Only this computer's "
                "sandbox may be used without encryption."
            )

    @property
    def url(self) -> str:
        """``smtp://host:port`` (``smtps://`` for implicit TLS), for the history."""
        return smtp_url(self.host, self.port, self.security)

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    # -- connection --

    def _connect(self) -> smtplib.SMTP:
        """An authenticated connection; raises :class:`_Failure` with nothing sent."""
        where = f"{self.host}:{self.port}"
        try:
            if self.security is SmtpSecurity.TLS:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._context()
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except ssl.SSLCertVerificationError as exc:
            raise _Failure(Outcome.FAILED, _untrusted(where, exc)) from exc
        except ssl.SSLError as exc:
            raise _Failure(
                Outcome.FAILED,
                f"The TLS handshake with the SMTP relay {where} failed ({exc.reason or exc}): "
                "check the port and the security setting. Nothing was sent.",
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise _Failure(
                Outcome.FAILED,
                f"Could not connect to the SMTP relay {where} ({exc}): check the host, the "
                "port and the network. Nothing was sent.",
                transient=_transient(exc),
            ) from exc
        try:
            conn.ehlo()
            if self.security is SmtpSecurity.STARTTLS:
                conn = self._starttls(conn)
            if self.user:
                self._login(conn)
        except _Failure:
            _quietly_close(conn)
            raise
        except (OSError, smtplib.SMTPException) as exc:
            _quietly_close(conn)
            raise _Failure(
                Outcome.FAILED,
                f"The SMTP relay {where} closed the connection before sending ({exc}). "
                "Nothing was sent.",
                transient=_transient(exc),
            ) from exc
        return conn

    def _connect_retrying(self, cancel: threading.Event | None) -> tuple[smtplib.SMTP, int]:
        """:meth:`_connect`, tried again on transient failures; (connection, tries)."""
        tries = 0
        while True:
            tries += 1
            try:
                return self._connect(), tries
            except _Failure as failure:
                failure.tries = tries
                if not failure.transient or tries >= self.retry.max_tries:
                    if tries > 1:
                        failure.meaning += f" (tried {tries} times)"
                    raise
                delay = self.retry.backoff(tries, self._rng)
                log.info(
                    "SMTP %s:%d: %s; try %d of %d in %.2f s", self.host, self.port,
                    failure.meaning, tries + 1, self.retry.max_tries, delay,
                )
                if cancel is not None and cancel.wait(delay):
                    cancelled = _Failure(
                        Outcome.CANCELLED,
                        f"Cancelled before it was sent, while waiting to reconnect: "
                        f"{failure.meaning}",
                    )
                    cancelled.tries = tries
                    raise cancelled from failure
                if cancel is None and delay > 0:
                    time.sleep(delay)

    def _starttls(self, conn: smtplib.SMTP) -> smtplib.SMTP:
        where = f"{self.host}:{self.port}"
        if not conn.has_extn("starttls"):
            if self._loopback:
                log.warning("%s offers no STARTTLS; going on unencrypted (loopback).", where)
                return conn
            raise _Failure(
                Outcome.FAILED,
                f"The SMTP relay {where} does not offer STARTTLS, so the password was not "
                "sent. Use port 465 with TLS, or check the host.",
            )
        try:
            conn.starttls(context=self._context())
            conn.ehlo()
            return conn
        except ssl.SSLCertVerificationError as exc:
            _quietly_close(conn)
            raise _Failure(Outcome.FAILED, _untrusted(where, exc)) from exc
        except (ssl.SSLError, smtplib.SMTPException, OSError) as exc:
            # Even on loopback: the relay offered encryption, so going on without it would
            # hand the password to whatever made the handshake fail.
            _quietly_close(conn)
            raise _Failure(
                Outcome.FAILED,
                f"STARTTLS with the SMTP relay {where} failed ({exc}). Nothing was sent, not "
                "even the password, and no unencrypted connection was tried.",
            ) from exc

    def _login(self, conn: smtplib.SMTP) -> None:
        where = f"{self.host}:{self.port}"
        if not conn.has_extn("auth"):
            raise _Failure(
                Outcome.FAILED,
                f"The SMTP relay {where} offers no login (AUTH) on this connection: check the "
                "port and the security setting.",
            )
        offered = conn.esmtp_features.get("auth", "").upper().split()
        # The relay documents PLAIN and LOGIN (contract §7); smtplib's login() would prefer
        # CRAM-MD5 when offered, which the relay's accounts are not known to support.
        mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
        if mechanism is None:
            raise _Failure(
                Outcome.FAILED,
                f"The SMTP relay {where} supports neither AUTH PLAIN nor LOGIN "
                f"(it offers {' '.join(offered) or 'nothing'}).",
            )
        conn.user, conn.password = self.user, self._password
        authobject = conn.auth_plain if mechanism == "PLAIN" else conn.auth_login
        try:
            conn.auth(mechanism, authobject)
        except smtplib.SMTPAuthenticationError as exc:
            raise _Failure(
                Outcome.REFUSED,
                f"The SMTP relay {where} refused the username or password: use the SMTP "
                "credentials from the Netcore dashboard (they are not the API key).",
                _reply_text(exc.smtp_code, exc.smtp_error),
            ) from exc
        finally:
            # smtplib keeps these on the connection object; the password has no more use.
            conn.password = ""

    def check_login(self) -> str | None:
        """Connect, secure and log in exactly as a send would, then leave; send nothing.

        Returns ``None`` when the relay accepted the login, else the sentence explaining why
        not (the same sentences a send gives). For "Test connection" in the profiles dialog.
        """
        with self._lock:
            try:
                conn = self._connect()
            except _Failure as failure:
                return failure.meaning
            _quietly_close(conn)
            return None

    # -- sending --

    def _record(self, item: MimeMessage, data: bytes) -> RequestRecord:
        headers = (("MAIL FROM", item.sender), ("RCPT TO", ", ".join(item.recipients)))
        return RequestRecord(method="SMTP", url=self.url, headers=headers, body_bytes=data)

    def send_messages(
        self, items: Sequence[MimeMessage], *, cancel: threading.Event | None = None
    ) -> list[ApiResult]:
        """Send every message over one connection; one result per message, in order.

        Setting ``cancel`` stops before the next message (the rest are ``cancelled``).
        """
        with self._lock:
            return self._send_locked(items, cancel)

    def send(self, item: MimeMessage) -> ApiResult:
        """Send one message."""
        return self.send_messages([item])[0]

    def _send_locked(
        self, items: Sequence[MimeMessage], cancel: threading.Event | None
    ) -> list[ApiResult]:
        results: list[ApiResult] = []
        conn: smtplib.SMTP | None = None
        # A failure to connect or log in applies to every message after it as well.
        no_connection: _Failure | None = None
        try:
            for item in items:
                data = item.message.as_bytes(policy=email.policy.SMTP)
                record = self._record(item, data)
                started = time.perf_counter()
                if cancel is not None and cancel.is_set():
                    results.append(
                        _result(Outcome.CANCELLED, "Cancelled before it was sent.",
                                record, started, item, attempts=0)
                    )
                    continue
                tries = 1
                # A connection that broke before this message's content went out (the relay
                # restarted, an idle timeout) is replaced once, for this message and the rest.
                reconnected = False
                failed = False
                while True:
                    try:
                        if no_connection is not None:
                            raise no_connection
                        if conn is None:
                            try:
                                conn, tries = self._connect_retrying(cancel)
                            except _Failure as failure:
                                no_connection = failure
                                raise
                        code, reply = self._transaction(conn, item, data)
                    except _Failure as failure:
                        attempts = tries if conn is not None else failure.tries
                        lost = failure.connection_lost or failure.outcome is Outcome.UNKNOWN
                        if conn is not None and lost:
                            _quietly_close(conn)
                            conn = None
                        if failure.connection_lost and not reconnected:
                            reconnected = True
                            log.info("SMTP %s:%d: %s; reconnecting.", self.host, self.port,
                                     failure.meaning)
                            continue
                        results.append(
                            _result(failure.outcome, failure.meaning, record, started, item,
                                    failure.reply, attempts=attempts + int(reconnected))
                        )
                        failed = True
                    break
                if failed:
                    continue
                reply_text = _reply_text(code, reply)
                meaning = f"Sent: the SMTP relay accepted the message ({reply_text})."
                results.append(
                    _result(Outcome.SENT, meaning, record, started, item, reply_text, ok=True,
                            attempts=tries + int(reconnected))
                )
        finally:
            if conn is not None:
                try:
                    conn.quit()
                except (OSError, smtplib.SMTPException):
                    _quietly_close(conn)
        return results

    def _transaction(
        self, conn: smtplib.SMTP, item: MimeMessage, data: bytes
    ) -> tuple[int, bytes]:
        """MAIL, RCPT, DATA for one message; raises :class:`_Failure` when not accepted."""
        options: list[str] = []
        if not all(a.isascii() for a in (item.sender, *item.recipients)):
            if not conn.has_extn("smtputf8"):
                raise _Failure(
                    Outcome.REFUSED,
                    "An address has non-ASCII characters and this SMTP relay does not accept "
                    "them (no SMTPUTF8).",
                )
            options.append("SMTPUTF8")
        if conn.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        try:
            code, reply = conn.mail(item.sender, options)
            if code != 250:
                conn.rset()
                raise _Failure(
                    _outcome_for_reply(code),
                    f"The SMTP relay refused the sender {item.sender}: "
                    f"{_reply_text(code, reply)}. Check that its domain is verified.",
                    _reply_text(code, reply),
                )
            refused: dict[str, str] = {}
            last_code = 0
            for rcpt in item.recipients:
                code, reply = conn.rcpt(rcpt)
                if code not in (250, 251):
                    refused[rcpt] = _reply_text(code, reply)
                    last_code = code
            if len(refused) == len(item.recipients):
                conn.rset()
                detail = "; ".join(f"{k}: {v}" for k, v in refused.items())
                raise _Failure(
                    _outcome_for_reply(last_code),
                    f"The SMTP relay refused every recipient ({detail}).",
                    detail,
                )
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            raise _Failure(
                Outcome.FAILED,
                f"The SMTP relay dropped the connection before the message ({exc}). "
                "Nothing was sent.",
                connection_lost=True,
            ) from exc
        try:
            code, reply = conn.data(data)
        except smtplib.SMTPDataError as exc:
            # Raised when DATA itself is refused, before any of the message went out.
            raise _Failure(
                _outcome_for_reply(exc.smtp_code),
                f"The SMTP relay refused the message: "
                f"{_reply_text(exc.smtp_code, exc.smtp_error)}.",
                _reply_text(exc.smtp_code, exc.smtp_error),
            ) from exc
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            # The message was (partly) on its way: it may have been accepted.
            raise _Failure(
                Outcome.UNKNOWN,
                "No answer from the SMTP relay after the message was sent: it may have been "
                f"sent ({exc}). Check the history/events before resending.",
            ) from exc
        if code != 250:
            raise _Failure(
                _outcome_for_reply(code),
                f"The SMTP relay did not accept the message: {_reply_text(code, reply)}.",
                _reply_text(code, reply),
            )
        if refused:
            log.warning("Some recipients were refused: %s", refused)
            reply = reply + b" (refused: " + ", ".join(refused).encode() + b")"
        return code, reply


def _untrusted(where: str, exc: ssl.SSLCertVerificationError) -> str:
    """The sentence for a relay certificate that failed verification."""
    detail = exc.verify_message or exc.reason or str(exc)
    return (
        f"The SMTP relay {where} presented a certificate this computer does not trust "
        f"({detail}). Nothing was sent, not even the password. If your organisation uses "
        "its own certificate authority, set the profile's CA bundle to its certificate file."
    )


def _outcome_for_reply(code: int) -> Outcome:
    # 5xx is a permanent refusal; 4xx (and anything odd) a temporary failure worth retrying.
    return Outcome.REFUSED if 500 <= code < 600 else Outcome.FAILED


def _result(
    outcome: Outcome,
    meaning: str,
    record: RequestRecord,
    started: float,
    item: MimeMessage,
    reply: str = "",
    *,
    ok: bool = False,
    attempts: int = 1,
) -> ApiResult:
    return ApiResult(
        ok=ok,
        status_code=None,
        outcome=outcome,
        meaning=meaning,
        message_id=item.message_id if ok else None,
        latency_ms=(time.perf_counter() - started) * 1000.0,
        attempts=attempts,
        request=record,
        response_body=reply,
    )


def _quietly_close(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError, smtplib.SMTPException):
        conn.close()


__all__ = [
    "IMPLICIT_TLS_PORT",
    "STARTTLS_PORTS",
    "MimeMessage",
    "SmtpSecurity",
    "SmtpSecurityError",
    "SmtpTransport",
    "build_all",
    "build_mime",
    "smtp_url",
]
