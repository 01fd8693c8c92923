"""Profiles: the dialog (keys into the real keyring, "Test connection") and the first start."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from netcore_desktop.core.contract import Region
from netcore_desktop.core.profiles import Profile, ProfileStore
from netcore_desktop.core.secrets import SecretStore
from netcore_desktop.sandbox import EmbeddedSandbox
from netcore_desktop.ui.profiles_dialog import FirstRunDialog, ProfilesDialog
from netcore_desktop.ui.send_worker import SecretsStatus
from tests._ports import free_port

from ._support import when_modal

WAIT = 15000


def _dialog(qtbot: Any, window: Any) -> ProfilesDialog:
    qtbot.waitUntil(lambda: window.secrets_status is not None, timeout=WAIT)
    dialog = ProfilesDialog(ProfileStore(), window.worker, window.secrets_status, None, window)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_add_a_profile_store_its_key_and_test_the_connection(
    qtbot: Any, make_window: Any, sandbox: EmbeddedSandbox
) -> None:
    window = make_window(restore_draft=False)
    dialog = _dialog(qtbot, window)
    if not window.secrets_status.usable:
        pytest.skip("needs a real keyring: run the tests with `bash tests/run.sh`")
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(dialog.name, "Staging")
    dialog.region.setCurrentIndex(dialog.region.findData(Region.CUSTOM))
    assert dialog.base_url.isEnabled()
    qtbot.keyClicks(dialog.base_url, sandbox.base_url)
    qtbot.keyClicks(dialog.sender_email, "news@mail.example.org")

    # A wrong key: the test explains the refusal (and the region hint).
    qtbot.keyClicks(dialog.key, "wrong-key-0000000")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith("✖"), timeout=WAIT)
    assert "HTTP 401" in dialog.test_result.text()
    assert "region" in dialog.test_result.text()

    # The right key, saved straight into the keyring (the profile is saved first).
    dialog.key.clear()
    qtbot.keyClicks(dialog.key, sandbox.api_key)
    qtbot.mouseClick(dialog.save_key, Qt.MouseButton.LeftButton)
    assert dialog.key.text() == ""  # handed over, not kept in the field
    qtbot.waitUntil(lambda: "Saved" in dialog.secret_result.text(), timeout=WAIT)
    assert "system keyring" in dialog.secret_result.text()
    assert SecretStore().get_api_key("Staging") == sandbox.api_key
    saved = ProfileStore().get("Staging")
    assert saved.base_url == sandbox.base_url and saved.region is Region.CUSTOM
    assert sandbox.api_key not in ProfileStore().path.read_text(encoding="utf-8")

    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith("✔"), timeout=WAIT)
    assert "Connected" in dialog.test_result.text()

    # Nothing listening: the failure names the host and says nothing was sent.
    dialog.base_url.clear()
    qtbot.keyClicks(dialog.base_url, f"http://127.0.0.1:{free_port()}")
    qtbot.mouseClick(dialog.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith("✖"), timeout=WAIT)
    assert "Could not connect to 127.0.0.1" in dialog.test_result.text()

    # The window picks the new profile up when the dialog closes.
    dialog.close()
    window.reload_profiles("Staging")
    assert window.profile is not None and window.profile.name == "Staging"
    qtbot.waitUntil(lambda: window.key_label.text() == "", timeout=WAIT)


def test_invalid_profile_is_explained_not_saved(qtbot: Any, make_window: Any) -> None:
    window = make_window(restore_draft=False)
    dialog = _dialog(qtbot, window)
    qtbot.keyClicks(dialog.name, "Remote")
    dialog.region.setCurrentIndex(dialog.region.findData(Region.CUSTOM))
    qtbot.keyClicks(dialog.base_url, "http://mail.example.org")
    qtbot.keyClicks(dialog.sender_email, "not-an-address")
    assert dialog.save_profile() is False
    text = dialog.problems.text()
    assert "unencrypted" in text and "Sender" in text
    assert ProfileStore().names() == []


def test_removing_a_profile_forgets_it(
    qtbot: Any, make_window: Any, sandbox_profile: Profile
) -> None:
    window = make_window(restore_draft=False)
    dialog = _dialog(qtbot, window)
    assert dialog.list.currentItem().text() == sandbox_profile.name

    def answer_yes() -> None:
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        box.button(QMessageBox.StandardButton.Yes).click()

    QTimer.singleShot(0, answer_yes)
    qtbot.mouseClick(dialog.remove_button, Qt.MouseButton.LeftButton)
    assert ProfileStore().names() == []
    assert dialog.list.count() == 0

    def forgotten() -> bool:
        try:
            return SecretStore().get_api_key(sandbox_profile.name) is None
        except Exception:  # read while the worker deletes it: ask again
            return False

    qtbot.waitUntil(forgotten, timeout=WAIT)


def test_an_unusable_keyring_is_said_plainly(qtbot: Any, make_window: Any) -> None:
    window = make_window(restore_draft=False)
    status = SecretsStatus(False, "No usable keyring (keyring.backends.fail.Keyring).")
    dialog = ProfilesDialog(ProfileStore(), window.worker, status, None, window)
    qtbot.addWidget(dialog)
    text = dialog.keyring_label.text()
    assert "No usable keyring on this computer" in text
    assert "this session only" in text and "never written to disk" in text
    assert dialog.keyring_label.property("role") == "warningBar"


def test_first_start_offers_the_sandbox_and_opens_on_it(qtbot: Any, make_window: Any) -> None:
    clicked: list[str] = []

    def choose_sandbox(dialog: FirstRunDialog) -> None:
        clicked.append(dialog.windowTitle())
        dialog.sandbox_button.click()

    QTimer.singleShot(0, when_modal(FirstRunDialog, choose_sandbox))
    window = make_window(offer_first_run=True)
    qtbot.waitUntil(lambda: bool(clicked), timeout=WAIT)
    assert clicked == ["Welcome to Netcore Desktop"]
    qtbot.waitUntil(
        lambda: window.profile is not None and window.profile.name == "Sandbox", timeout=WAIT
    )
    assert window.badge.text() == "SANDBOX"
    embedded = window.worker.worker.sandbox
    assert embedded is not None and embedded.running
    assert window.profile.base_url == embedded.base_url
    assert window.controller.draft.subject.startswith("Welcome, [%FIRST_NAME%]")
    assert window.form.sender_email.text() == "hello@sandbox.example.com"

    with qtbot.waitSignal(window.send_finished, timeout=WAIT) as finished:
        window.send()
    assert finished.args[0].ok, finished.args[0].meaning
    (record,) = embedded.messages()
    assert record["message_id"] == window.log_model.entry(0).message_id

    window.shutdown()
    assert window.worker.worker.sandbox is None
    assert not embedded.running
