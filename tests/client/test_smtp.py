"""The SMTP relay transport against the sandbox's SMTP side, over real sockets.

The sandbox stores the raw message it received, so each test reads back exactly what a
recipient's server would get: the MIME structure, the headers, who was in the envelope.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest

from netcore_desktop.core.client import RetryPolicy
from netcore_desktop.core.history import Outcome
from netcore_desktop.core.message import Address, Attachment, Envelope
from netcore_desktop.core.profiles import SmtpSecurity
from netcore_desktop.core.render import render_html
from netcore_desktop.core.smtp import SmtpSecurityError, SmtpTransport, build_all, build_mime
from netcore_desktop.sandbox import EmbeddedSandbox

from ._support import FAST_RETRY, make_draft


def _transport(sandbox: EmbeddedSandbox, **changes: object) -> SmtpTransport:
    settings: dict[str, object] = {
        "host": "127.0.0.1",
        "port": sandbox.smtp_port,
        "user": sandbox.smtp_user,
        "password": sandbox.smtp_password,
        "security": SmtpSecurity.NONE,
        "timeout": 10.0,
        "retry": FAST_RETRY,
    }
    settings.update(changes)
    return SmtpTransport(**settings)  # type: ignore[arg-type]


def _received(sandbox: EmbeddedSandbox, token: str) -> tuple[dict[str, object], EmailMessage]:
    found = sandbox.messages(token=token)
    assert len(found) == 1, found
    request = found[0]["request"]
    assert isinstance(request, dict)
    raw = str(request["raw"]).encode("utf-8")
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return request, message


def _two_envelope_draft() -> object:
    return make_draft(
        envelopes=(
            Envelope(
                to=(Address("asha@example.net", "Asha Rao"), Address("ravi@example.net")),
                cc=(Address("accounts@example.net", "Accounts"),),
                bcc=(Address("audit@example.net"),),
                attributes={"FIRST_NAME": "Asha", "INVOICE_NO": "INV-1042"},
                headers={"List-Unsubscribe": "<mailto:unsub@mail.example.org>"},
                attachments=(Attachment("asha.txt", b"only for Asha"),),
            ),
            Envelope(
                to=(Address("li@example.net", "Li Wei"),),
                attributes={"FIRST_NAME": "Li", "INVOICE_NO": "INV-1043"},
            ),
        ),
        reply_to="help@mail.example.org",
        tags=("invoice", "q3"),
        attachments=(Attachment("invoice.pdf", b"%PDF-1.4 fake"),),
    )


def test_each_envelope_is_one_message_with_text_html_and_attachments(
    sandbox: EmbeddedSandbox,
) -> None:
    draft = _two_envelope_draft()
    items = build_all(draft)  # type: ignore[arg-type]
    results = _transport(sandbox).send_messages(items)
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert all(r.ok and r.status_code is None for r in results)
    assert [r.message_id for r in results] == [i.message_id for i in items]
    assert "250" in results[0].meaning

    envelopes = draft.envelopes  # type: ignore[attr-defined]
    request, msg = _received(sandbox, envelopes[0].token)
    assert msg.get_content_type() == "multipart/mixed"
    parts = list(msg.iter_parts())
    assert parts[0].get_content_type() == "multipart/alternative"
    kinds = [p.get_content_type() for p in parts[0].iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    text = parts[0].get_body(preferencelist=("plain",))
    html = parts[0].get_body(preferencelist=("html",))
    assert text is not None and html is not None
    # Placeholders are filled per envelope, as Netcore would fill them.
    assert "Hi Asha," in text.get_content()
    assert "[%" not in text.get_content()
    assert "<strong>Asha</strong>" in html.get_content()
    assert msg["Subject"] == "Invoice INV-1042 is ready, Asha"
    names = [p.get_filename() for p in msg.iter_attachments()]
    assert names == ["invoice.pdf", "asha.txt"]
    assert msg["X-APIHEADER"] == envelopes[0].token
    assert msg["X-TAGS"] == "invoice, q3"
    assert msg["Reply-To"] == "help@mail.example.org"
    assert msg["List-Unsubscribe"] == "<mailto:unsub@mail.example.org>"
    assert msg["Message-ID"] == items[0].message_id
    assert "Asha Rao <asha@example.net>" in msg["To"] and "ravi@example.net" in msg["To"]
    assert "accounts@example.net" in msg["Cc"]
    # Bcc: in the envelope, never in the headers.
    assert msg["Bcc"] is None
    assert all("audit@example.net" not in str(value) for value in msg.values())
    assert sorted(request["rcpt_to"]) == sorted(  # type: ignore[arg-type]
        ["asha@example.net", "ravi@example.net", "accounts@example.net", "audit@example.net"]
    )

    _, second = _received(sandbox, envelopes[1].token)
    assert second["Subject"] == "Invoice INV-1043 is ready, Li"
    assert [p.get_filename() for p in second.iter_attachments()] == ["invoice.pdf"]
    assert second["X-APIHEADER"] == envelopes[1].token


def test_the_html_part_is_the_rendered_body_the_api_would_send() -> None:
    draft = make_draft()
    item = build_mime(draft, draft.envelopes[0])
    html_part = item.message.get_body(preferencelist=("html",))
    assert html_part is not None
    expected = render_html(draft).replace("[%FIRST_NAME%]", "Asha").replace(
        "[%INVOICE_NO%]", "INV-1042"
    )
    assert html_part.get_content().rstrip("\n") == expected.rstrip("\n")
    assert item.message.get_content_type() == "multipart/alternative"


def test_starttls_missing_on_loopback_goes_on_unencrypted(sandbox: EmbeddedSandbox) -> None:
    draft = make_draft()
    transport = _transport(sandbox, security=SmtpSecurity.STARTTLS)
    result = transport.send(build_mime(draft, draft.envelopes[0]))
    assert result.outcome is Outcome.SENT, result.meaning
    assert len(sandbox.messages(token=draft.envelopes[0].token)) == 1


def test_a_wrong_password_is_refused_and_nothing_is_sent(sandbox: EmbeddedSandbox) -> None:
    draft = make_draft()
    result = _transport(sandbox, password="wrong").send(build_mime(draft, draft.envelopes[0]))
    assert result.outcome is Outcome.REFUSED
    assert "username or password" in result.meaning
    assert "not the API key" in result.meaning
    assert sandbox.messages() == []


def test_implicit_tls_never_falls_back_to_plaintext(sandbox: EmbeddedSandbox) -> None:
    # The sandbox speaks plain SMTP: a TLS handshake with it fails, and must stay failed.
    draft = make_draft()
    transport = _transport(sandbox, security=SmtpSecurity.TLS)
    result = transport.send(build_mime(draft, draft.envelopes[0]))
    assert result.outcome is Outcome.FAILED
    assert "Nothing was sent" in result.meaning
    assert sandbox.messages() == []


def test_a_temporary_relay_failure_is_failed_not_refused(sandbox: EmbeddedSandbox) -> None:
    sandbox.set_faults(fail_rate=1.0)
    draft = make_draft()
    result = _transport(sandbox).send(build_mime(draft, draft.envelopes[0]))
    assert result.outcome is Outcome.FAILED
    assert "451" in result.meaning
    # The relay may have been handed the message: a 451 to DATA is never sent again.
    assert result.attempts == 1
    assert sandbox.stats()["responses"]["smtp_451"] == 1


def test_no_relay_listening_is_failed_with_advice() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    draft = make_draft(envelopes=make_draft().envelopes * 2)
    transport = SmtpTransport("127.0.0.1", port, "u", "p", SmtpSecurity.NONE, timeout=5,
                              retry=FAST_RETRY)
    results = transport.send_messages(build_all(draft))
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.FAILED]
    assert "Could not connect" in results[0].meaning
    assert "tried 4 times" in results[0].meaning and results[0].attempts == 4


def test_a_dropped_connection_before_the_message_is_tried_again(
    sandbox_factory: Callable[..., EmbeddedSandbox],
) -> None:
    # Seed 7 drops the first connections and then lets one through.
    flaky = sandbox_factory(drop_rate=0.5, seed=7)
    draft = make_draft()
    result = _transport(flaky).send(build_mime(draft, draft.envelopes[0]))
    assert result.outcome is Outcome.SENT, result.meaning
    dropped = flaky.stats()["responses"]["smtp_dropped"]
    assert dropped >= 1 and result.attempts == dropped + 1
    assert len(flaky.messages(token=draft.envelopes[0].token)) == 1


def test_a_relay_that_keeps_dropping_is_given_up_after_the_api_tries(
    sandbox: EmbeddedSandbox,
) -> None:
    sandbox.set_faults(drop_rate=1.0)
    draft = make_draft()
    result = _transport(sandbox).send(build_mime(draft, draft.envelopes[0]))
    assert result.outcome is Outcome.FAILED and "Nothing was sent" in result.meaning
    assert result.attempts == FAST_RETRY.max_tries == 4
    assert sandbox.stats()["responses"]["smtp_dropped"] == 4
    assert sandbox.messages() == []


def test_a_refused_login_is_not_tried_again(sandbox: EmbeddedSandbox) -> None:
    draft = make_draft()
    result = _transport(sandbox, password="wrong").send(build_mime(draft, draft.envelopes[0]))
    assert result.outcome is Outcome.REFUSED and result.attempts == 1
    assert sandbox.stats()["responses"]["smtp_535"] == 1


def test_cancelling_while_waiting_to_reconnect_stops_at_once(sandbox: EmbeddedSandbox) -> None:
    sandbox.set_faults(drop_rate=1.0)
    draft = make_draft(envelopes=make_draft().envelopes * 2)
    slow = RetryPolicy(base_delay_s=30.0, max_delay_s=30.0)
    cancel = threading.Event()
    timer = threading.Timer(0.2, cancel.set)
    timer.start()
    try:
        results = _transport(sandbox, retry=slow).send_messages(build_all(draft), cancel=cancel)
    finally:
        timer.cancel()
    assert [r.outcome for r in results] == [Outcome.CANCELLED, Outcome.CANCELLED]
    assert "Cancelled before it was sent" in results[0].meaning
    assert sandbox.messages() == []


@pytest.mark.parametrize("host", ["smtp.netcorecloud.net", "10.1.2.3", "example.org"])
def test_plaintext_credentials_to_another_computer_are_refused(host: str) -> None:
    with pytest.raises(SmtpSecurityError, match="unencrypted"):
        SmtpTransport(host, 25, "user", "secret-password", SmtpSecurity.NONE)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_plaintext_is_allowed_to_this_computer(host: str) -> None:
    transport = SmtpTransport(host, 2525, "user", "pw", SmtpSecurity.NONE)
    assert transport.url == f"smtp://{host}:2525"


class _DropsAtSecondMail:
    """An aiosmtpd handler that closes the first connection when its second MAIL FROM
    arrives (as a relay restarting or timing out an idle session would), and keeps every
    message it accepts."""

    def __init__(self) -> None:
        self.connections: set[int] = set()
        self.mails = 0
        self.delivered: list[tuple[int, bytes]] = []

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.connections.add(id(session))
        self.mails += 1
        if self.mails == 2:
            server.transport.close()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered.append((id(session), bytes(envelope.original_content or b"")))
        return "250 Message accepted"


def test_a_connection_lost_between_messages_is_replaced_and_nothing_is_sent_twice() -> None:
    from aiosmtpd.controller import Controller

    handler = _DropsAtSecondMail()
    with socket.socket() as probe:  # aiosmtpd's Controller needs the port up front
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        draft = make_draft(
            envelopes=tuple(
                Envelope(to=(Address(f"reader{i}@example.net"),)) for i in range(3)
            )
        )
        transport = SmtpTransport(
            "127.0.0.1", port, "", "",
            SmtpSecurity.NONE, timeout=10.0, retry=FAST_RETRY,
        )
        results = transport.send_messages(build_all(draft))
    finally:
        controller.stop()
    assert [r.outcome for r in results] == [Outcome.SENT] * 3, [r.meaning for r in results]
    # The second message went on a new connection, once; the third followed it there.
    assert results[1].attempts == 2
    assert len(handler.delivered) == 3
    assert len({session for session, _ in handler.delivered}) == 2
    for envelope, (_, raw) in zip(draft.envelopes, handler.delivered, strict=True):
        assert envelope.token.encode() in raw
