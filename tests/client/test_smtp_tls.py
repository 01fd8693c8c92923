"""The SMTP transport's encrypted paths against the sandbox relay with a real certificate.

A throwaway certificate authority (``trustme``) signs the sandbox's certificate for
``127.0.0.1`` and ``localhost``: trusting that CA stands for a company's own CA bundle, and
not trusting it stands for a relay whose certificate this computer cannot verify. The
sandbox accepts a password without TLS on loopback, so a client that fell back to plaintext
would be seen delivering: these tests show it does not.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from netcore_desktop.core.history import Outcome
from netcore_desktop.core.profiles import SmtpSecurity
from netcore_desktop.core.smtp import SmtpTransport, build_mime
from netcore_desktop.sandbox import EmbeddedSandbox, SandboxConfig

from ._support import make_draft


@dataclass(frozen=True)
class Tls:
    """A test CA (its PEM file too) and a server certificate it signed."""

    ca: trustme.CA
    ca_file: Path
    cert: Path
    key: Path

    def trusting(self) -> ssl.SSLContext:
        """Client settings that trust the test CA only."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def _make_tls(folder: Path, *names: str) -> Tls:
    ca = trustme.CA()
    server = ca.issue_cert(*names)
    tls = Tls(ca, folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca.cert_pem.write_to_path(str(tls.ca_file))
    tls.cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(tls.key))
    return tls


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return _make_tls(tmp_path_factory.mktemp("tls"), "127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def tls_server(tls: Tls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSandbox]:
    config = SandboxConfig(smtp_tls_cert=tls.cert, smtp_tls_key=tls.key,
                           data_dir=tmp_path_factory.mktemp("tls-sandbox"))
    with EmbeddedSandbox(config) as sandbox:
        yield sandbox


@pytest.fixture
def relay(tls_server: EmbeddedSandbox) -> EmbeddedSandbox:
    """The TLS sandbox, emptied for this test."""
    tls_server.reset()
    return tls_server


def _port(sandbox: EmbeddedSandbox, security: SmtpSecurity) -> int:
    if security is SmtpSecurity.TLS:
        assert sandbox.smtps_port is not None
        return sandbox.smtps_port
    return sandbox.smtp_port


def _transport(
    sandbox: EmbeddedSandbox, security: SmtpSecurity, context: ssl.SSLContext,
    host: str = "127.0.0.1",
) -> SmtpTransport:
    return SmtpTransport(host, _port(sandbox, security), sandbox.smtp_user,
                         sandbox.smtp_password, security, timeout=10.0, ssl_context=context)


def _logins(sandbox: EmbeddedSandbox) -> int:
    """How many AUTH attempts (good or bad) reached the relay."""
    responses = sandbox.stats()["responses"]
    return int(responses.get("smtp_235", 0)) + int(responses.get("smtp_535", 0))


@pytest.mark.parametrize(
    ("security", "host"),
    [(SmtpSecurity.STARTTLS, "127.0.0.1"), (SmtpSecurity.STARTTLS, "localhost"),
     (SmtpSecurity.TLS, "127.0.0.1"), (SmtpSecurity.TLS, "localhost")],
)
def test_a_trusted_relay_gets_the_message_encrypted(
    relay: EmbeddedSandbox, tls: Tls, security: SmtpSecurity, host: str
) -> None:
    draft = make_draft()
    item = build_mime(draft, draft.envelopes[0])
    transport = _transport(relay, security, tls.trusting(), host)
    result = transport.send(item)
    assert result.outcome is Outcome.SENT, result.meaning
    assert result.message_id == item.message_id
    scheme = "smtps" if security is SmtpSecurity.TLS else "smtp"
    assert transport.url == f"{scheme}://{host}:{_port(relay, security)}"
    (stored,) = relay.messages(token=item.token)
    request = stored["request"]
    assert str(request["tls"]).startswith("TLSv1.")  # the session really was encrypted
    assert request["x_apiheader"] == item.token
    assert f"X-APIHEADER: {item.token}" in str(request["raw"])
    assert _logins(relay) == 1


@pytest.mark.parametrize("security", [SmtpSecurity.STARTTLS, SmtpSecurity.TLS])
def test_an_untrusted_certificate_stops_before_the_password_even_on_loopback(
    relay: EmbeddedSandbox, security: SmtpSecurity
) -> None:
    # The system's CAs do not include the test CA: the relay cannot be verified. The relay
    # would take the password unencrypted (loopback), so a plaintext fallback would show.
    draft = make_draft(envelopes=make_draft().envelopes * 2)
    transport = _transport(relay, security, ssl.create_default_context())
    results = transport.send_messages([build_mime(draft, e) for e in draft.envelopes])
    assert [r.outcome for r in results] == [Outcome.FAILED, Outcome.FAILED]
    meaning = results[0].meaning
    assert "does not trust" in meaning and "CA bundle" in meaning
    assert "Nothing was sent, not even the password" in meaning
    assert relay.messages() == []
    assert _logins(relay) == 0


def test_a_certificate_for_another_name_is_refused(
    sandbox_factory: Callable[..., EmbeddedSandbox], tmp_path: Path
) -> None:
    other = _make_tls(tmp_path, "relay.example.org")
    sandbox = sandbox_factory(smtp_tls_cert=other.cert, smtp_tls_key=other.key)
    draft = make_draft()
    result = _transport(sandbox, SmtpSecurity.STARTTLS, other.trusting()).send(
        build_mime(draft, draft.envelopes[0])
    )
    assert result.outcome is Outcome.FAILED
    assert "does not trust" in result.meaning and "127.0.0.1" in result.meaning
    assert sandbox.messages() == []
    assert _logins(sandbox) == 0

