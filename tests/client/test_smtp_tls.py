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
from pathlib import Path

import pytest

from netcore_desktop.core.history import History, Outcome
from netcore_desktop.core.profiles import Profile, SmtpSecurity, Transport
from netcore_desktop.core.secrets import SecretStore
from netcore_desktop.core.sending import SendError, SendService
from netcore_desktop.core.smtp import SmtpTransport, build_mime
from netcore_desktop.sandbox import EmbeddedSandbox
from tests._tls import Tls, make_tls

from ._support import make_draft


@pytest.fixture
def relay(tls_sandbox: EmbeddedSandbox) -> EmbeddedSandbox:
    """The sandbox with a TLS relay (``tls_sandbox``), emptied for this test."""
    return tls_sandbox


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
    assert results[0].attempts == 1  # a certificate problem is not cured by trying again
    meaning = results[0].meaning
    assert "does not trust" in meaning and "CA bundle" in meaning
    assert "Nothing was sent, not even the password" in meaning
    assert relay.messages() == []
    assert _logins(relay) == 0


def test_a_certificate_for_another_name_is_refused(
    sandbox_factory: Callable[..., EmbeddedSandbox], tmp_path: Path
) -> None:
    other = make_tls(tmp_path, "relay.example.org")
    sandbox = sandbox_factory(smtp_tls_cert=other.cert, smtp_tls_key=other.key)
    draft = make_draft()
    result = _transport(sandbox, SmtpSecurity.STARTTLS, other.trusting()).send(
        build_mime(draft, draft.envelopes[0])
    )
    assert result.outcome is Outcome.FAILED
    assert "does not trust" in result.meaning and "127.0.0.1" in result.meaning
    assert sandbox.messages() == []
    assert _logins(sandbox) == 0


# --- the profile's CA bundle, through SendService ---------------------------------------------


@pytest.fixture
def secrets(keyring_service: str) -> Iterator[SecretStore]:
    store = SecretStore(service=keyring_service)
    yield store
    store.delete_all("company")


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    with History(tmp_path / "history.sqlite3") as h:
        yield h


def _profile(sandbox: EmbeddedSandbox, security: SmtpSecurity, ca_bundle: str) -> Profile:
    return Profile(
        name="company", transport=Transport.SMTP, smtp_host="127.0.0.1",
        smtp_port=_port(sandbox, security), smtp_user=sandbox.smtp_user,
        smtp_security=security, sender_email="billing@mail.example.org",
        ca_bundle=ca_bundle, timeout_s=10.0,
    )


@pytest.mark.keyring
@pytest.mark.parametrize("security", [SmtpSecurity.STARTTLS, SmtpSecurity.TLS])
def test_the_profile_ca_bundle_lets_smtp_trust_a_company_relay(
    relay: EmbeddedSandbox, tls: Tls, secrets: SecretStore, history: History,
    security: SmtpSecurity,
) -> None:
    secrets.set_smtp_password("company", relay.smtp_password)
    with SendService(_profile(relay, security, str(tls.ca_file)), secrets, history) as service:
        prepared = service.prepare(make_draft())
        outcome = service.send(prepared)
    assert outcome.ok, outcome.result.meaning
    (attempt_id,) = outcome.attempt_ids
    entry = history.get(attempt_id)
    assert entry.outcome is Outcome.SENT
    (token,) = prepared.tokens
    (stored,) = relay.messages(token=token)
    assert str(stored["request"]["tls"]).startswith("TLSv1.")


@pytest.mark.keyring
def test_without_the_ca_bundle_the_company_relay_is_not_trusted(
    relay: EmbeddedSandbox, secrets: SecretStore, history: History
) -> None:
    secrets.set_smtp_password("company", relay.smtp_password)
    with SendService(_profile(relay, SmtpSecurity.STARTTLS, ""), secrets, history) as service:
        outcome = service.send(service.prepare(make_draft()))
    assert not outcome.ok
    entry = history.get(outcome.attempt_id)
    assert entry.outcome is Outcome.FAILED
    assert "CA bundle" in outcome.result.meaning
    assert relay.messages() == [] and _logins(relay) == 0


@pytest.mark.keyring
def test_an_unreadable_ca_bundle_is_a_clear_settings_error(
    relay: EmbeddedSandbox, secrets: SecretStore, history: History, tmp_path: Path
) -> None:
    secrets.set_smtp_password("company", relay.smtp_password)
    bad = tmp_path / "company-ca.pem"
    bad.write_text("not a certificate")
    for bundle in (str(bad), str(tmp_path / "missing.pem")):
        with SendService(_profile(relay, SmtpSecurity.STARTTLS, bundle), secrets,
                         history) as service:
            prepared = service.prepare(make_draft())
            with pytest.raises(SendError) as caught:
                service.send(prepared)
        assert caught.value.code == "config"
        assert bundle in str(caught.value) and "CA bundle" in str(caught.value)
    assert history.count() == 0
    assert relay.messages() == []
