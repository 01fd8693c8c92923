"""The SMTP relay with a TLS certificate: STARTTLS and implicit TLS over real sockets.

The certificates come from a throwaway certificate authority made by ``trustme``; clients
trust exactly that authority, as a company's own CA bundle would be trusted.
"""

from __future__ import annotations

import argparse
import logging
import signal
import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from netcore_desktop.sandbox import EmbeddedSandbox, SandboxConfig
from netcore_desktop.sandbox.cli import add_sandbox_parser, run_sandbox
from tests._tls import Tls

from .conftest import SandboxFactory
from .test_cli import _start


def _message(token: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "billing@mail.example.org"
    msg["To"] = "asha@example.net"
    msg["Subject"] = "Invoice INV-1042"
    msg["X-APIHEADER"] = token
    msg.set_content("Hi Asha")
    return msg


def _send(smtp: smtplib.SMTP, sandbox: EmbeddedSandbox, token: str) -> None:
    smtp.login(sandbox.smtp_user, sandbox.smtp_password)
    assert smtp.send_message(_message(token)) == {}


def test_starttls_is_offered_and_the_message_records_it(
    tls_sandbox: EmbeddedSandbox, tls: Tls
) -> None:
    with smtplib.SMTP(tls_sandbox.host, tls_sandbox.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        code, _ = smtp.starttls(context=tls.trusting())
        assert code == 220
        smtp.ehlo()
        assert not smtp.has_extn("starttls")  # once is enough
        _send(smtp, tls_sandbox, "nd-starttls")
    (stored,) = tls_sandbox.messages(token="nd-starttls")
    assert str(stored["request"]["tls"]).startswith("TLSv1.")
    assert stored["request"]["x_apiheader"] == "nd-starttls"


def test_implicit_tls_port_speaks_tls_from_the_first_byte(
    tls_sandbox: EmbeddedSandbox, tls: Tls
) -> None:
    port = tls_sandbox.smtps_port
    assert port is not None and port not in (tls_sandbox.smtp_port, tls_sandbox.port)
    with smtplib.SMTP_SSL(
        "localhost", port, timeout=10, context=tls.trusting()
    ) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        _send(smtp, tls_sandbox, "nd-smtps")
    (stored,) = tls_sandbox.messages(token="nd-smtps")
    assert str(stored["request"]["tls"]).startswith("TLSv1.")
    # A plaintext client on that port gets no SMTP greeting: the port only speaks TLS.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        plain.sendall(b"EHLO client.example\r\n")
        answer = plain.recv(1024)
    assert not answer.startswith(b"220") and b"SMTP" not in answer


def test_plain_smtp_still_works_on_loopback_and_is_marked_unencrypted(
    tls_sandbox: EmbeddedSandbox,
) -> None:
    with smtplib.SMTP(tls_sandbox.host, tls_sandbox.smtp_port, timeout=10) as smtp:
        _send(smtp, tls_sandbox, "nd-plain")
    (stored,) = tls_sandbox.messages(token="nd-plain")
    assert stored["request"]["tls"] is None


def test_info_page_names_the_smtps_port(tls_sandbox: EmbeddedSandbox) -> None:
    info = httpx.get(tls_sandbox.base_url + "/").json()
    assert info["smtps_port"] == tls_sandbox.smtps_port
    assert info["smtp_starttls"] is True


def test_without_a_certificate_there_is_no_tls(sandbox: EmbeddedSandbox) -> None:
    assert sandbox.smtps_port is None and not sandbox.smtp_tls
    with smtplib.SMTP(sandbox.host, sandbox.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
    info = httpx.get(sandbox.base_url + "/").json()
    assert info["smtps_port"] is None and info["smtp_starttls"] is False


def test_a_client_refusing_the_certificate_sends_nothing_and_logs_one_line(
    tls_sandbox: EmbeddedSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    untrusting = ssl.create_default_context()  # the system's CAs: not the test CA
    with smtplib.SMTP(tls_sandbox.host, tls_sandbox.smtp_port, timeout=10) as smtp:
        smtp.ehlo()
        with pytest.raises(ssl.SSLCertVerificationError):
            smtp.starttls(context=untrusting)
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL(tls_sandbox.host, tls_sandbox.smtps_port or 0, timeout=10,
                         context=untrusting)
    assert tls_sandbox.messages() == []
    assert not {"smtp_235", "smtp_535"} & set(tls_sandbox.stats()["responses"])
    # The sandbox's console shows why, without a traceback.
    for _ in range(100):
        if any("STARTTLS handshake failed" in r.getMessage() for r in caplog.records):
            break
        time.sleep(0.02)
    assert any("STARTTLS handshake failed" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info]


def test_certificate_and_key_go_together(tls: Tls) -> None:
    with pytest.raises(ValueError, match="both a certificate and its key"):
        SandboxConfig(smtp_tls_cert=tls.cert)
    with pytest.raises(ValueError, match="smtps_port needs"):
        SandboxConfig(smtps_port=4650)


def test_an_unreadable_certificate_fails_start_naming_the_file(tmp_path: Path, tls: Tls) -> None:
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello")
    sandbox = EmbeddedSandbox(SandboxConfig(smtp_tls_cert=bad, smtp_tls_key=tls.key,
                                            data_dir=tmp_path))
    with pytest.raises(ValueError, match=r"not-a-cert\.pem"):
        sandbox.start()
    assert not sandbox.running


def test_a_fixed_smtps_port_is_used(sandbox_factory: SandboxFactory, tls: Tls) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    sandbox = sandbox_factory(smtp_tls_cert=tls.cert, smtp_tls_key=tls.key, smtps_port=free)
    assert sandbox.smtps_port == free
    with smtplib.SMTP_SSL("127.0.0.1", free, timeout=10, context=tls.trusting()) as smtp:
        _send(smtp, sandbox, "nd-fixed")
    assert len(sandbox.messages(token="nd-fixed")) == 1


def test_cli_smtps_port_needs_the_tls_flags(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_sandbox_parser(parser.add_subparsers())
    args = parser.parse_args(["sandbox", "--smtps-port", "0"])
    assert run_sandbox(args) == 2
    assert "--smtps-port needs --smtp-tls-cert and --smtp-tls-key" in capsys.readouterr().err


def test_cli_serves_starttls_and_smtps_and_prints_the_port(tmp_path: Path, tls: Tls) -> None:
    proc, printed = _start("--smtp-tls-cert", str(tls.cert), "--smtp-tls-key", str(tls.key),
                           "--data-dir", str(tmp_path))
    try:
        assert printed["SMTP relay"].endswith("(STARTTLS)")
        host, _, port = printed["SMTPS (implicit TLS)"].rpartition(":")
        assert host == "127.0.0.1"
        with smtplib.SMTP_SSL(host, int(port), timeout=10, context=tls.trusting()) as smtp:
            smtp.login("sandbox", "sandbox-password")
            assert smtp.send_message(_message("nd-cli-tls")) == {}
        url = printed["Netcore sandbox API"]
        (stored,) = httpx.get(url + "/sandbox/messages", params={"token": "nd-cli-tls"}).json()[
            "messages"
        ]
        assert str(stored["request"]["tls"]).startswith("TLSv1.")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
