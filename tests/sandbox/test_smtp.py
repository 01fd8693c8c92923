"""The SMTP relay over real sockets with smtplib: AUTH, refusals, storage, events."""

from __future__ import annotations

import re
import smtplib
from email.message import EmailMessage

import httpx
import pytest

from netcore_desktop.sandbox import EmbeddedSandbox

from .conftest import SandboxFactory, payload, v5, v6


def _message(token: str = "nd-smtp", tags: str = "invoice, march") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Example Billing <billing@mail.example.org>"
    msg["To"] = "Asha Rao <asha@example.net>"
    msg["Cc"] = "cc@example.net"
    msg["Subject"] = "Invoice INV-1042"
    msg["X-APIHEADER"] = token
    msg["X-TAGS"] = tags
    msg.set_content("Hi Asha")
    msg.add_alternative("<p>Hi Asha</p>", subtype="html")
    return msg


def _connect(sandbox: EmbeddedSandbox) -> smtplib.SMTP:
    return smtplib.SMTP(sandbox.host, sandbox.smtp_port, timeout=10)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_then_send_is_stored_with_its_token(
    sandbox: EmbeddedSandbox, mechanism: str
) -> None:
    with _connect(sandbox) as smtp:
        smtp.ehlo()
        assert "PLAIN" in smtp.esmtp_features["auth"] and "LOGIN" in smtp.esmtp_features["auth"]
        smtp.user, smtp.password = sandbox.smtp_user, sandbox.smtp_password
        code, _ = smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))
        assert code == 235
        refused = smtp.send_message(_message(), to_addrs=["asha@example.net", "cc@example.net",
                                                          "hidden@example.net"])
        assert refused == {}
    (stored,) = sandbox.messages(token="nd-smtp")
    assert stored["api_version"] == "smtp" and stored["transport"] == "smtp"
    request = stored["request"]
    assert request["subject"] == "Invoice INV-1042"
    assert request["x_apiheader"] == "nd-smtp"
    assert request["tags"] == ["invoice", "march"]
    assert request["rcpt_to"] == ["asha@example.net", "cc@example.net", "hidden@example.net"]
    assert "<p>Hi Asha</p>" in request["raw"]
    assert sandbox.smtp_password not in str(stored)


def test_data_answer_names_the_message_id(sandbox: EmbeddedSandbox) -> None:
    with _connect(sandbox) as smtp:
        smtp.login(sandbox.smtp_user, sandbox.smtp_password)
        smtp.mail("billing@mail.example.org")
        smtp.rcpt("asha@example.net")
        code, reply = smtp.data(_message("nd-id").as_bytes())
    assert code == 250
    match = re.search(rb"queued as ([0-9a-f]{32})", reply)
    assert match is not None
    (stored,) = sandbox.messages(token="nd-id")
    assert stored["message_id"] == match.group(1).decode()


def test_wrong_password_is_refused_with_535(sandbox: EmbeddedSandbox) -> None:
    with _connect(sandbox) as smtp, pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        smtp.login(sandbox.smtp_user, "wrong-password")
    assert caught.value.smtp_code == 535
    with _connect(sandbox) as smtp, pytest.raises(smtplib.SMTPAuthenticationError):
        smtp.login("someone-else", sandbox.smtp_password)


def test_mail_without_auth_is_refused(sandbox: EmbeddedSandbox) -> None:
    with _connect(sandbox) as smtp:
        smtp.ehlo()
        code, _ = smtp.mail("billing@mail.example.org")
    assert code == 530
    assert sandbox.messages() == []


def test_smtp_messages_have_events_too(sandbox: EmbeddedSandbox) -> None:
    with _connect(sandbox) as smtp:
        smtp.login(sandbox.smtp_user, sandbox.smtp_password)
        smtp.send_message(_message("nd-ev"), to_addrs=["asha@example.net", "x@bounce.invalid"])
    with httpx.Client(base_url=sandbox.base_url) as api:
        events = api.get(
            "/v5.1/events", params={"xapiheader": "nd-ev"}, headers=v5(sandbox)
        ).json()["data"]
    outcome = {e["EMAIL"]: e["EVENT"] for e in events if e["EVENT"] != "processed"}
    assert outcome == {"asha@example.net": "sent", "x@bounce.invalid": "bounced"}
    assert all(e["TAGS"] == "invoice,march" for e in events)
    assert all(e["FROMADDRESS"] == "billing@mail.example.org" for e in events)


def test_smtp_fail_rate_gives_a_temporary_failure(sandbox: EmbeddedSandbox) -> None:
    sandbox.set_faults(fail_rate=1.0)
    with _connect(sandbox) as smtp:
        smtp.login(sandbox.smtp_user, sandbox.smtp_password)
        with pytest.raises(smtplib.SMTPDataError) as caught:
            smtp.send_message(_message("nd-fail"))
    assert caught.value.smtp_code == 451
    assert sandbox.messages() == []


def test_smtp_drop_rate_closes_new_connections_before_the_greeting(
    sandbox: EmbeddedSandbox,
) -> None:
    sandbox.set_faults(drop_rate=1.0)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        _connect(sandbox)
    assert sandbox.stats()["responses"]["smtp_dropped"] == 1
    sandbox.set_faults(drop_rate=0.0)
    with _connect(sandbox) as smtp:
        smtp.login(sandbox.smtp_user, sandbox.smtp_password)
        smtp.send_message(_message("nd-after-drop"))
    assert len(sandbox.messages(token="nd-after-drop")) == 1


def test_non_ascii_headers_are_decoded(sandbox: EmbeddedSandbox) -> None:
    msg = _message("nd-utf8")
    del msg["Subject"]
    msg["Subject"] = "Facture n° 42 – été"
    with _connect(sandbox) as smtp:
        smtp.login(sandbox.smtp_user, sandbox.smtp_password)
        smtp.send_message(msg)
    (stored,) = sandbox.messages(token="nd-utf8")
    assert stored["request"]["subject"] == "Facture n° 42 – été"
    assert stored["headers"]["subject"] == "Facture n° 42 – été"


def test_broken_headers_are_still_accepted_and_stored(sandbox: EmbeddedSandbox) -> None:
    raw = (
        b"From: =?utf-8?q?broken\r\n"
        b"To: <<asha@example.net\r\n"
        b"Subject: =?unknown-charset?b?!!!?=\r\n"
        b"X-APIHEADER: nd-broken\r\n"
        b"\r\n\xff\xfe body\r\n"
    )
    with _connect(sandbox) as smtp:
        smtp.login(sandbox.smtp_user, sandbox.smtp_password)
        smtp.mail("billing@mail.example.org")
        smtp.rcpt("asha@example.net")
        code, _ = smtp.data(raw)
    assert code == 250
    (stored,) = sandbox.messages(token="nd-broken")
    assert stored["request"]["rcpt_to"] == ["asha@example.net"]


def test_credentials_never_reach_the_log(
    sandbox: EmbeddedSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    import base64
    import logging

    with caplog.at_level(logging.DEBUG):
        for mechanism in ("PLAIN", "LOGIN"):
            with _connect(sandbox) as smtp:
                smtp.ehlo()
                smtp.user, smtp.password = sandbox.smtp_user, sandbox.smtp_password
                smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))
                smtp.send_message(_message(f"nd-log-{mechanism}"))
    assert len(sandbox.messages()) == 2
    plain = base64.b64encode(
        f"\0{sandbox.smtp_user}\0{sandbox.smtp_password}".encode()
    ).decode()
    assert sandbox.smtp_password not in caplog.text
    assert plain not in caplog.text
    assert base64.b64encode(sandbox.smtp_password.encode()).decode() not in caplog.text


def test_smtp_counts_toward_the_daily_limit(sandbox_factory: SandboxFactory) -> None:
    sandbox = sandbox_factory(daily_limit=1)
    with httpx.Client(base_url=sandbox.base_url, headers=v6(sandbox)) as api:
        assert api.post("/v6/mail/send", json=payload()).status_code == 200
    with _connect(sandbox) as smtp:
        smtp.login(sandbox.smtp_user, sandbox.smtp_password)
        smtp.send_message(_message("nd-over"))
    (stored,) = sandbox.messages(token="nd-over")
    assert stored["status"] == "queued"
