""""Test connection" for an SMTP profile checks exactly what a send would.

The sandbox's relay runs with a certificate from a throwaway authority (``trustme``),
standing in for a company's own CA. The dialog's test must use the profile's CA bundle
and the transport's rules: trusted with the bundle, a clear refusal without it (and no
password sent in plaintext instead), and a wrong password said as such.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from netcore_desktop.core.contract import Region
from netcore_desktop.core.profiles import ProfileStore
from netcore_desktop.sandbox import EmbeddedSandbox
from netcore_desktop.ui.profiles_dialog import ProfilesDialog
from tests._tls import Tls

WAIT = 15000


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
    qtbot: Any, make_window: Any, tls: Tls, tls_sandbox: EmbeddedSandbox
) -> None:
    ca_file, relay = tls.ca_file, tls_sandbox
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
