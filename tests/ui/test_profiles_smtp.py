""""Test connection" for an SMTP profile checks exactly what a send would.

The sandbox's relay runs with a certificate from a throwaway authority (``trustme``),
standing in for a company's own CA. The dialog's test must use the profile's CA bundle
and the transport's rules: trusted with the bundle, a clear refusal without it (and no
password sent in plaintext instead), and a wrong password said as such.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from PySide6.QtCore import Qt

from netcore_desktop.core.contract import Region
from netcore_desktop.core.profiles import ProfileStore
from netcore_desktop.sandbox import EmbeddedSandbox, SandboxConfig
from netcore_desktop.ui.profiles_dialog import ProfilesDialog

WAIT = 15000


@pytest.fixture(scope="module")
def ca_and_relay(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, EmbeddedSandbox]]:
    folder = tmp_path_factory.mktemp("smtp-tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert, key = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(key))
    config = SandboxConfig(smtp_tls_cert=cert, smtp_tls_key=key, data_dir=folder / "sandbox")
    with EmbeddedSandbox(config) as relay:
        yield ca_file, relay


def _smtp_dialog(qtbot: Any, window: Any, relay: EmbeddedSandbox) -> ProfilesDialog:
    qtbot.waitUntil(lambda: window.secrets_status is not None, timeout=WAIT)
    dialog = ProfilesDialog(ProfileStore(), window.worker, window.secrets_status, None, window)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(dialog.name, "Relay")
    dialog.region.setCurrentIndex(dialog.region.findData(Region.CUSTOM))
    qtbot.keyClicks(dialog.base_url, relay.base_url)
    qtbot.keyClicks(dialog.sender_email, "news@mail.example.org")
    dialog.transport.setCurrentIndex(
        dialog.transport.findText("SMTP", Qt.MatchFlag.MatchContains)
    )
    dialog.smtp_host.setText("localhost")
    dialog.smtp_port.setValue(relay.smtp_port)
    dialog.smtp_security.setCurrentIndex(
        dialog.smtp_security.findText("STARTTLS", Qt.MatchFlag.MatchContains)
    )
    dialog.smtp_user.setText(relay.smtp_user)
    return dialog


def _test(qtbot: Any, dialog: ProfilesDialog) -> str:
    dialog.test_result.clear()
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_result.text()[:1] in ("✔", "✖"), timeout=WAIT)
    return dialog.test_result.text()


def test_smtp_connection_test_uses_the_profiles_ca_bundle(
    qtbot: Any, make_window: Any, ca_and_relay: tuple[Path, EmbeddedSandbox]
) -> None:
    ca_file, relay = ca_and_relay
    window = make_window(restore_draft=False)
    dialog = _smtp_dialog(qtbot, window, relay)
    assert dialog.smtp_password.isEnabled()
    qtbot.keyClicks(dialog.smtp_password, relay.smtp_password)

    # Without the bundle the relay's certificate is not trusted: said plainly, and the
    # password was not sent in plaintext instead (the relay saw no login).
    logins_before = relay.stats()["responses"].get("smtp_235", 0)
    refused = _test(qtbot, dialog)
    assert refused.startswith("✖")
    assert "does not trust" in refused and "CA bundle" in refused
    assert relay.stats()["responses"].get("smtp_235", 0) == logins_before

    # With the company's CA bundle it connects, secures the session and logs in.
    dialog.ca_bundle.setText(str(ca_file))
    accepted = _test(qtbot, dialog)
    assert accepted.startswith("✔"), accepted
    assert "accepted the login" in accepted

    # A wrong password is a refused login, with where to find the right one.
    dialog.smtp_password.clear()
    qtbot.keyClicks(dialog.smtp_password, "not-the-password")
    wrong = _test(qtbot, dialog)
    assert wrong.startswith("✖")
    assert "refused the username or password" in wrong
