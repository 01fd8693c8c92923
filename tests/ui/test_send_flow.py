"""Compose, preview and send through the real window against the real sandbox.

The person's path: type into the form, see the recipient's values in the preview, press
Send, and find the request in the response log; the sandbox's record of that request must
match it (same correlation token, same message id). Each answer the service can give (401,
400, 202, 500) must show its meaning in the log and the status bar.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from netcore_desktop.core.client import RetryPolicy
from netcore_desktop.core.contract import Region
from netcore_desktop.core.history import History
from netcore_desktop.core.profiles import Profile, ProfileStore
from netcore_desktop.core.secrets import SecretStore
from netcore_desktop.sandbox import EmbeddedSandbox
from netcore_desktop.ui.log_model import COLUMNS
from tests._ports import free_port

from ._support import answer_box

WAIT = 15000


def _page_text(qtbot: Any, window: Any) -> str:
    """The text the web preview shows now."""
    found: list[str] = []
    window.preview.renderer.page.toPlainText(found.append)
    qtbot.waitUntil(lambda: bool(found), timeout=WAIT)
    return found[0]


def _edit_cell(qtbot: Any, window: Any, row: int, key: str, text: str) -> None:
    """Type ``text`` into the recipients table cell of ``key`` like a person would."""
    form = window.form
    form.tabs.setCurrentIndex(form.TAB_RECIPIENTS)
    column = form.recipients_model.column_for_key(key)
    assert column >= 0, f"no column for {key}"
    index = form.recipients_model.index(row, column)
    form.recipients_table.setCurrentIndex(index)
    form.recipients_table.edit(index)
    editor = form.recipients_table.indexWidget(index) or QApplication.focusWidget()
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)


def _compose(qtbot: Any, window: Any) -> None:
    form = window.form
    qtbot.keyClicks(form.to_edit, "Asha Rao <asha@example.net>")
    qtbot.keyClicks(form.subject, "Your order [%ORDER_NO%], [%FIRST_NAME%]")
    qtbot.keyClicks(form.body, "Hi **[%FIRST_NAME%]**, order [%ORDER_NO%] ships today.")
    qtbot.waitUntil(lambda: form.recipients_model.column_for_key("ORDER_NO") >= 0, timeout=WAIT)
    _edit_cell(qtbot, window, 0, "FIRST_NAME", "Asha")
    _edit_cell(qtbot, window, 0, "ORDER_NO", "ORD-7")


def _log_cell(window: Any, column: str, row: int = 0) -> str:
    model = window.log_model
    return str(model.index(row, COLUMNS.index(column)).data())


def test_compose_preview_send_and_the_sandbox_record_match(
    qtbot: Any, make_window: Any, sandbox: EmbeddedSandbox, sandbox_profile: Profile
) -> None:
    window = make_window()
    assert window.badge.text() == "SANDBOX"
    assert window.profile_box.currentText() == sandbox_profile.name
    _compose(qtbot, window)

    # The preview shows this recipient's values, from the same HTML that is sent.
    qtbot.waitUntil(
        lambda: window.preview.subject_label.text() == "Your order ORD-7, Asha", timeout=WAIT
    )
    qtbot.waitUntil(lambda: "order ORD-7 ships today" in _page_text(qtbot, window), timeout=WAIT)
    assert "Hi Asha" in _page_text(qtbot, window)
    qtbot.waitUntil(lambda: "ORD-7" in window.preview.json_view.toPlainText(), timeout=WAIT)
    assert window.checks.summary.text() == "Ready to send"

    with qtbot.waitSignal(window.send_finished, timeout=WAIT) as finished:
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
        assert window.send_button.text() == "Cancel"
    result = finished.args[0]
    assert result.ok, result.meaning
    assert window.send_button.text() == "Send"

    # One log row, newest first, with the answer in plain words.
    assert window.log_model.rowCount() == 1
    entry = window.log_model.entry(0)
    assert _log_cell(window, "status") == "200"
    assert _log_cell(window, "meaning").startswith("Sent")
    assert _log_cell(window, "profile") == sandbox_profile.name
    assert _log_cell(window, "recipients") == "asha@example.net"
    assert _log_cell(window, "endpoint") == sandbox.base_url + "/v6/mail/send"
    message_id = _log_cell(window, "message_id")
    assert len(message_id) == 32
    assert message_id in window.statusBar().currentMessage()

    # The sandbox's record of the request: same token, same message id, same values.
    (token,) = entry.tokens
    records = sandbox.messages(token=token)
    assert [r["message_id"] for r in records] == [message_id]
    body = records[0]["request"]
    envelope = body["personalizations"][0]
    assert envelope["token_to"] == token
    assert envelope["attributes"] == {"FIRST_NAME": "Asha", "ORDER_NO": "ORD-7"}
    assert body["subject"] == "Your order [%ORDER_NO%], [%FIRST_NAME%]"
    assert body["from"]["email"] == "news@mail.example.org"

    # The details pane shows the request with the key masked, and the answer.
    details = window.log_view.details.toPlainText()
    assert message_id in details and token in details
    assert sandbox.api_key not in details
    assert "Bearer ****" in details


def test_ctrl_enter_sends(
    qtbot: Any, make_window: Any, sandbox: EmbeddedSandbox, sandbox_profile: Profile
) -> None:
    window = make_window(use_sample_draft=True, restore_draft=False)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT)
    window.form.body.setFocus()
    with qtbot.waitSignal(window.send_finished, timeout=WAIT) as finished:
        qtbot.keyClick(window.form.body, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert finished.args[0].ok
    assert "Ctrl+Return" in window.send_button.toolTip()
    assert len(sandbox.messages()) == 1


def test_send_test_to_me_goes_only_to_the_profile_address(
    qtbot: Any, make_window: Any, sandbox: EmbeddedSandbox, sandbox_profile: Profile
) -> None:
    window = make_window(use_sample_draft=True, restore_draft=False)
    window.controller.select_envelope(1)  # preview Tom's values
    with qtbot.waitSignal(window.send_finished, timeout=WAIT) as finished:
        qtbot.mouseClick(window.test_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].ok
    (record,) = sandbox.messages()
    body = record["request"]
    (envelope,) = body["personalizations"]
    assert envelope["to"] == [{"email": "me@example.org"}]
    assert envelope["attributes"]["FIRST_NAME"] == "Tom"
    assert _log_cell(window, "recipients") == "me@example.org"


@pytest.mark.parametrize(
    ("case", "status", "meaning"),
    [
        ("wrong key", "401", "The key was refused"),
        ("bad request", "400", "Refused"),
        ("daily limit", "202", "daily limit"),
        ("server error", "500", "The service failed (HTTP 500) on every try"),
    ],
)
def test_each_answer_shows_its_meaning(
    qtbot: Any,
    make_window: Any,
    sandbox: EmbeddedSandbox,
    sandbox_profile: Profile,
    case: str,
    status: str,
    meaning: str,
) -> None:
    if case == "wrong key":
        SecretStore().set_api_key(sandbox_profile.name, "not-the-sandbox-key-123")
    elif case == "bad request":
        sandbox.force_status(400, 1)
    elif case == "daily limit":
        sandbox.set_faults(daily_limit=0)
    else:
        sandbox.force_status(500, 10)  # more than the four tries of the client
    window = make_window(use_sample_draft=True, restore_draft=False)
    with qtbot.waitSignal(window.send_finished, timeout=WAIT) as finished:
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    result = finished.args[0]
    assert result.ok is (status == "202")
    assert _log_cell(window, "status") == status
    assert meaning in _log_cell(window, "meaning")
    assert meaning in window.statusBar().currentMessage()
    assert window.send_button.text() == "Send"
    if status == "500":
        assert window.log_model.entry(0).attempts == 4
        assert "4 tries" in window.log_view.details.toPlainText()
    if status == "202":
        assert window.log_model.entry(0).outcome == "queued"
        assert len(_log_cell(window, "message_id")) == 32
    if status in ("400", "401"):
        # The service's own words are listed with the checks until the next edit.
        assert any(p.message.startswith("Netcore refused") for p in window.checks.problems)


def test_a_dead_network_is_explained_the_draft_kept_and_the_resend_goes_once(
    qtbot: Any, make_window: Any, sandbox_factory: Any, app_home: Path
) -> None:
    # A profile whose service is down: nothing listens on its port yet.
    port = free_port()
    profile = Profile(name="Down for now", region=Region.CUSTOM,
                      base_url=f"http://127.0.0.1:{port}", sender_email="news@mail.example.org")
    store = ProfileStore()
    store.save(profile)
    store.set_last_used(profile.name)
    SecretStore().set_api_key(profile.name, "sandbox-key")
    window = make_window(use_sample_draft=True, restore_draft=False)
    assert window.profile_box.currentText() == profile.name
    subject, body = window.form.subject.text(), window.form.body.toPlainText()

    with qtbot.waitSignal(window.send_finished, timeout=WAIT) as finished:
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    result = finished.args[0]
    assert not result.ok and result.outcome == "failed"
    # What went wrong and that nothing went out, in the log and the status bar.
    assert _log_cell(window, "status") in ("", "None", "—")
    assert "Could not connect" in _log_cell(window, "meaning")
    assert "Nothing was sent" in window.statusBar().currentMessage()
    assert window.send_button.text() == "Send" and window.send_button.isEnabled()
    # The draft is untouched and the attempt is in the history as failed.
    assert (window.form.subject.text(), window.form.body.toPlainText()) == (subject, body)
    with History() as history:
        assert history.count(profile=profile.name) == 1
        assert history.count(profile=profile.name, outcome="failed") == 1

    # The service comes back; pressing Send again sends each message exactly once.
    service = sandbox_factory(port=port, api_key="sandbox-key")
    with qtbot.waitSignal(window.send_finished, timeout=WAIT) as finished:
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].ok, finished.args[0].meaning
    tokens = window.log_model.entry(0).tokens
    assert len(service.messages()) == 1  # one request, one envelope per test recipient
    assert len(tokens) == 2 and all(len(service.messages(token=t)) == 1 for t in tokens)
    assert window.log_model.rowCount() == 2


def test_log_filter_and_copy_as_curl_keep_the_key_masked(
    qtbot: Any, make_window: Any, sandbox: EmbeddedSandbox, sandbox_profile: Profile
) -> None:
    window = make_window(use_sample_draft=True, restore_draft=False)
    for _ in range(2):
        with qtbot.waitSignal(window.send_finished, timeout=WAIT):
            qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    assert window.log_model.rowCount() == 2
    newest = window.log_model.entry(0)
    oldest = window.log_model.entry(1)
    assert newest.time >= oldest.time
    view = window.log_view
    qtbot.keyClicks(view.filter, oldest.message_id[:12])
    assert view.proxy.rowCount() == 1
    assert view.count_label.text() == "1 of 2"
    view.filter.clear()
    qtbot.keyClicks(view.filter, newest.tokens[1])  # correlation tokens are searchable too
    assert view.proxy.rowCount() == 1
    view.table.selectRow(0)
    qtbot.mouseClick(view.copy_curl, Qt.MouseButton.LeftButton)
    curl = QApplication.clipboard().text()
    assert curl.startswith("printf") and "curl" in curl
    assert "authorization: bearer ****" in curl.lower()
    assert sandbox.api_key not in curl
    assert newest.tokens[0] in curl
    qtbot.mouseClick(view.copy_python, Qt.MouseButton.LeftButton)
    python = QApplication.clipboard().text()
    assert "import httpx" in python and sandbox.api_key not in python
    compile(python, "<copied>", "exec")
    payload = json.loads(newest.request.body_bytes)
    assert payload["personalizations"][0]["token_to"] == newest.tokens[0]


def test_blocking_problems_stop_the_send_and_are_listed(
    qtbot: Any, make_window: Any, sandbox: EmbeddedSandbox, sandbox_profile: Profile
) -> None:
    window = make_window()
    qtbot.keyClicks(window.form.to_edit, "asha@example.net")
    qtbot.keyClicks(window.form.body, "Hello")
    with qtbot.waitSignal(window.send_finished, timeout=WAIT) as finished:
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    result = finished.args[0]
    assert not result.ok and result.error_code == "checks"
    assert any(p.field == "subject" for p in result.problems)
    assert "subject" in window.statusBar().currentMessage().lower()
    assert sandbox.messages() == []
    assert window.log_model.rowCount() == 0


def test_quitting_during_a_slow_send_stops_cleanly(
    qtbot: Any, make_window: Any, sandbox: EmbeddedSandbox, sandbox_profile: Profile
) -> None:
    sandbox.set_faults(latency_ms=1500)
    window = make_window(use_sample_draft=True, restore_draft=False)
    with qtbot.waitSignal(window.worker.worker.job_started, timeout=WAIT):
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    assert window.sending
    window.close()
    assert window.shutdown() is True  # what aboutToQuit runs: cancel, quit, bounded wait
    assert not window.worker.running
    assert window.shutdown() is True  # a second call is harmless


def test_warnings_are_asked_about_before_sending(
    qtbot: Any, make_window: Any, sandbox: EmbeddedSandbox, sandbox_profile: Profile
) -> None:
    window = make_window(restore_draft=False)
    form = window.form
    qtbot.keyClicks(form.to_edit, "asha@example.net")
    qtbot.keyClicks(form.cc_edit, "asha@example.net")  # the same address twice: a warning
    qtbot.keyClicks(form.subject, "Hello")
    qtbot.keyClicks(form.body, "Hi")
    asked: list[str] = []
    QTimer.singleShot(0, answer_box("Cancel", asked))
    with qtbot.waitSignal(window.send_finished, timeout=WAIT) as finished:
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].outcome == "cancelled"
    assert "listed twice" in asked[0] and "Send now?" in asked[0]
    assert sandbox.messages() == []

    QTimer.singleShot(0, answer_box("Send", asked))
    with qtbot.waitSignal(window.send_finished, timeout=WAIT) as finished:
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].ok
    assert len(sandbox.messages()) == 1


def test_cancel_stops_a_send_between_retries(
    qtbot: Any, make_window: Any, sandbox: EmbeddedSandbox, sandbox_profile: Profile
) -> None:
    sandbox.force_status(500, 10)
    window = make_window(
        use_sample_draft=True, restore_draft=False,
        retry=RetryPolicy(base_delay_s=5.0, max_delay_s=5.0),
    )
    qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    assert window.send_button.text() == "Cancel"
    assert window.send_button.accessibleName() == "Cancel sending"
    qtbot.waitUntil(lambda: sandbox.stats()["responses"].get("500", 0) >= 1, timeout=WAIT)
    with qtbot.waitSignal(window.send_finished, timeout=WAIT) as finished:
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)  # now "Cancel"
    result = finished.args[0]
    assert result.outcome == "cancelled"
    assert _log_cell(window, "meaning").startswith("Cancelled after")
    assert window.send_button.text() == "Send"
    assert sandbox.messages() == []


def test_the_sandbox_command_line_opens_and_closes_cleanly(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        NETCORE_DESKTOP_HOME=str(tmp_path / "home"),
        NETCORE_DESKTOP_BENCH_STARTUP="1",  # print when painted and ready, then quit
    )
    result = subprocess.run(
        [sys.executable, "-m", "netcore_desktop", "--sandbox"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    marks = [line.split()[0] for line in result.stdout.splitlines()]
    assert marks == ["SHOWN", "READY"]
    assert "Destroyed while thread" not in result.stderr
    profiles = json.loads((tmp_path / "home" / "config" / "profiles.json").read_text())
    (profile,) = profiles["profiles"]
    assert profile["name"] == "Sandbox" and profile["is_sandbox"] is True
    assert profile["base_url"].startswith("http://127.0.0.1:")
    assert "api_key" not in json.dumps(profiles)
