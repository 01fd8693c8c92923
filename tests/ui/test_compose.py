"""The compose form: pasted lists, placeholder columns, checks that jump, autosave, files."""

from __future__ import annotations

import json
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QDateTime, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QLineEdit

from netcore_desktop.core.contract import ApiVersion
from netcore_desktop.core.message import Address, Draft, Envelope, build_payload, draft_to_dict
from netcore_desktop.ui.autosave import FILE_NAME
from netcore_desktop.ui.recipients_model import EMAIL_COLUMN

WAIT = 15000


def test_pasted_list_becomes_rows_and_bad_addresses_show_inline(
    qtbot: Any, make_window: Any
) -> None:
    window = make_window(restore_draft=False)
    form = window.form
    QApplication.clipboard().setText(
        'Asha Rao <asha@example.net>\ntom@example.net; bad@\n"Lee, Kim" <kim@example.net>\n'
    )
    form.to_edit.setFocus()
    form.to_edit.paste()
    draft = window.controller.draft
    assert [e.to[0].email for e in draft.envelopes] == [
        "asha@example.net", "tom@example.net", "bad@", "kim@example.net",
    ]
    assert draft.envelopes[3].to[0].name == "Lee, Kim"
    assert form.recipients_model.rowCount() == 4
    label = form.problem_labels["to"]
    assert label.isVisible()
    assert "'bad@'" in label.text()
    (underlined,) = form.to_edit.extraSelections()
    assert underlined.cursor.selectedText() == "bad@"
    assert form.to_edit.property("invalid") is True

    # Fixing the typo keeps the row (and its values) and clears the problem.
    form.to_edit.selectAll()
    qtbot.keyClicks(form.to_edit, "asha@example.net, kim@example.net")
    assert form.recipients_model.rowCount() == 2
    assert not label.isVisible()
    assert form.to_edit.extraSelections() == []


def test_cc_typed_before_to_or_kept_while_to_is_retyped_is_sent(
    qtbot: Any, make_window: Any
) -> None:
    window = make_window(restore_draft=False)
    form = window.form

    def cc_of_each_message() -> list[list[str]]:
        payload = build_payload(window.controller.draft, ApiVersion.V6)
        return [[c["email"] for c in p.get("cc", [])] for p in payload["personalizations"]]

    form.cc_edit.setFocus()
    qtbot.keyClicks(form.cc_edit, "Accounts <accounts@example.net>")
    form.to_edit.setFocus()
    qtbot.keyClicks(form.to_edit, "asha@example.net, tom@example.net")
    assert cc_of_each_message() == [["accounts@example.net"], ["accounts@example.net"]]
    # The preview says who gets a copy.
    qtbot.waitUntil(
        lambda: "Cc Accounts <accounts@example.net>" in window.preview.from_label.text(),
        timeout=WAIT,
    )

    # To cleared (no recipient row left) and typed again: the Cc field still applies.
    form.to_edit.selectAll()
    qtbot.keyClick(form.to_edit, Qt.Key.Key_Delete)
    assert window.controller.draft.envelopes == ()
    qtbot.keyClicks(form.to_edit, "li@example.net")
    assert cc_of_each_message() == [["accounts@example.net"]]
    assert form.cc_edit.toPlainText() == "Accounts <accounts@example.net>"

    # A row added in the table gets it too.
    window.controller.add_envelope()
    assert [e.cc for e in window.controller.draft.envelopes][-1] == (
        Address("accounts@example.net", "Accounts"),
    )


def test_placeholders_in_subject_and_body_become_columns(qtbot: Any, make_window: Any) -> None:
    window = make_window(restore_draft=False)
    form = window.form
    qtbot.keyClicks(form.to_edit, "asha@example.net, tom@example.net")
    qtbot.keyClicks(form.subject, "For [%FIRST_NAME%]")
    qtbot.keyClicks(form.body, "Hello from [%CITY%]!")
    model = form.recipients_model
    assert model.attribute_keys() == ["FIRST_NAME", "CITY"]
    header = [model.headerData(i, Qt.Orientation.Horizontal) for i in range(model.columnCount())]
    assert header == ["To", "Name", "FIRST_NAME", "CITY"]
    city = model.index(1, model.column_for_key("CITY"))
    assert "No value" in model.data(city, Qt.ItemDataRole.ToolTipRole)
    assert "[%FIRST_NAME%]" in form.recipients_hint.text()
    # Removing a placeholder keeps the values typed for it, marked as not used.
    model.setData(model.index(0, model.column_for_key("CITY")), "Pune")
    form.body.clear()
    assert model.attribute_keys() == ["FIRST_NAME", "CITY"]
    assert model.headerData(3, Qt.Orientation.Horizontal) == "CITY (not used)"
    assert window.controller.draft.envelopes[0].attributes["CITY"] == "Pune"


def test_table_edits_show_in_the_to_field(qtbot: Any, make_window: Any) -> None:
    window = make_window(restore_draft=False)
    form = window.form
    qtbot.keyClicks(form.to_edit, "asha@example.net")
    qtbot.mouseClick(form.add_row_button, Qt.MouseButton.LeftButton)
    editor = form.recipients_table.viewport().findChild(QLineEdit)
    assert editor is not None, "adding a row opens its address for typing"
    qtbot.keyClicks(editor, "tom@example.net")
    qtbot.keyClick(editor, Qt.Key.Key_Return)  # the view commits on its next event round
    qtbot.waitUntil(
        lambda: form.to_edit.toPlainText() == "asha@example.net, tom@example.net", timeout=WAIT
    )
    form.recipients_table.setCurrentIndex(form.recipients_model.index(0, EMAIL_COLUMN))
    qtbot.mouseClick(form.remove_row_button, Qt.MouseButton.LeftButton)
    assert form.to_edit.toPlainText() == "tom@example.net"


def _checks_item(window: Any, field: str) -> Any:
    for row in range(window.checks.list.count()):
        item = window.checks.list.item(row)
        if item.data(Qt.ItemDataRole.UserRole).field == field:
            return item
    raise AssertionError(f"no check for {field}: {[p.field for p in window.checks.problems]}")


def test_clicking_a_check_jumps_to_its_field(qtbot: Any, make_window: Any) -> None:
    window = make_window(restore_draft=False)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT)
    window.controller.load(
        Draft(
            sender=Address("news@mail.example.org"),
            subject="",
            body="Hi [%FIRST_NAME%]",
            envelopes=(
                Envelope(to=(Address("asha@example.net"),), attributes={"FIRST_NAME": "A"}),
                Envelope(to=(Address("tom@example.net"),)),
            ),
        )
    )
    wanted = {"subject", "recipients[1].FIRST_NAME"}
    qtbot.waitUntil(
        lambda: wanted <= {p.field for p in window.checks.problems}, timeout=WAIT
    )
    assert "to fix before sending" in window.checks.summary.text()
    checks = window.checks.list
    form = window.form

    item = _checks_item(window, "subject")
    qtbot.mouseClick(
        checks.viewport(), Qt.MouseButton.LeftButton, pos=checks.visualItemRect(item).center()
    )
    qtbot.waitUntil(form.subject.hasFocus, timeout=WAIT)

    item = _checks_item(window, "recipients[1].FIRST_NAME")
    qtbot.mouseClick(
        checks.viewport(), Qt.MouseButton.LeftButton, pos=checks.visualItemRect(item).center()
    )
    assert form.tabs.currentIndex() == form.TAB_RECIPIENTS
    current = form.recipients_table.currentIndex()
    assert (current.row(), current.column()) == (
        1, form.recipients_model.column_for_key("FIRST_NAME")
    )
    assert form.recipients_table.state() == form.recipients_table.State.EditingState


def _autosaved(app_home: Path) -> dict[str, Any]:
    """The draft in the autosave file now ({} while there is none or it is being written)."""
    try:
        doc = json.loads((app_home / "data" / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    draft = doc.get("draft")
    return draft if isinstance(draft, dict) else {}


def test_autosave_keeps_typing_within_two_seconds_and_restores_it(
    qtbot: Any, make_window: Any, app_home: Path
) -> None:
    window = make_window(restore_draft=False)
    form = window.form
    qtbot.keyClicks(form.to_edit, "asha@example.net")
    qtbot.keyClicks(form.subject, "Quarterly update")
    qtbot.keyClicks(form.body, "Numbers are **up**.")
    last_key = time.monotonic()
    qtbot.waitUntil(
        lambda: _autosaved(app_home).get("body") == "Numbers are **up**.", timeout=2000
    )
    assert time.monotonic() - last_key < 2.0
    window.shutdown()  # like a quit; a kill would have lost nothing more (saved above)

    again = make_window()
    assert again.form.subject.text() == "Quarterly update"
    assert again.form.body.toPlainText() == "Numbers are **up**."
    assert again.form.to_edit.toPlainText() == "asha@example.net"
    assert "Restored" in again.statusBar().currentMessage()


def test_a_cc_typed_before_any_recipient_survives_a_restart(
    qtbot: Any, make_window: Any, app_home: Path
) -> None:
    window = make_window(restore_draft=False)
    form = window.form
    qtbot.keyClicks(form.subject, "Board pack")
    form.cc_edit.setFocus()
    qtbot.keyClicks(form.cc_edit, "Accounts <accounts@example.net>")
    qtbot.waitUntil(
        lambda: "accounts@example.net" in json.dumps(_autosaved(app_home).get("envelopes")),
        timeout=2500,
    )
    assert window.windowTitle().startswith("Untitled draft*")
    window.shutdown()

    again = make_window()
    assert again.form.cc_edit.toPlainText() == "Accounts <accounts@example.net>"
    assert again.form.to_edit.toPlainText() == ""
    assert again.form.recipients_model.rowCount() == 0  # no empty recipient row
    again.form.to_edit.setFocus()
    qtbot.keyClicks(again.form.to_edit, "asha@example.net")
    (envelope,) = again.controller.draft.envelopes
    assert envelope.cc == (Address("accounts@example.net", "Accounts"),)


def test_save_and_open_a_draft_file(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    window = make_window(use_sample_draft=True, restore_draft=False)
    draft = window.controller.draft
    path = tmp_path / "welcome.json"
    assert window.save_draft_as(path)
    assert json.loads(path.read_text(encoding="utf-8")) == draft_to_dict(draft)
    assert window.windowTitle().startswith("welcome.json —")
    window.new_draft()  # saved, so no question is asked
    assert window.form.subject.text() == ""
    assert window.open_draft(path)
    assert window.controller.draft == draft
    assert window.form.subject.text() == draft.subject
    qtbot.keyClicks(window.form.subject, "!")
    assert window.windowTitle().startswith("welcome.json* —")


def test_attachments_by_drop_with_sizes(qtbot: Any, make_window: Any, tmp_path: Path) -> None:
    window = make_window(restore_draft=False)
    form = window.form
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF" + b"x" * 2044)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(report))])
    target = form.attachments.viewport()
    with warnings.catch_warnings():  # the only QDragEnterEvent constructor is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(
            QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "dragging files over the list is accepted"
    drop = QDropEvent(
        QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(target, drop)
    (attachment,) = window.controller.draft.attachments
    assert attachment.name == "report.pdf" and attachment.size == 2048
    assert form.attachments.item(0).text() == "report.pdf  ·  2.0 KB"
    assert form.attachments_total.text() == "1 file(s), 2.0 KB in total"
    assert form.tabs.tabText(form.TAB_ATTACHMENTS) == "&Attachments (1)"
    # Files dropped on the body are attached too, not pasted as paths.
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    form.body.insertFromMimeData(mime_with(notes))
    assert [a.name for a in window.controller.draft.attachments] == ["report.pdf", "notes.txt"]
    assert form.body.toPlainText() == ""


def mime_with(path: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    return mime


def test_options_reach_the_request(qtbot: Any, make_window: Any) -> None:
    window = make_window(use_sample_draft=True, restore_draft=False)
    form = window.form
    form.tabs.setCurrentIndex(form.TAB_OPTIONS)
    form.tracking["open_track"].setCheckState(Qt.CheckState.Unchecked)
    form.tracking["footer"].setCheckState(Qt.CheckState.Checked)
    form.priority.setCurrentIndex(form.priority.findData(2))
    form.tags.clear()
    qtbot.keyClicks(form.tags, "spring, promo")
    qtbot.keyClicks(form.template_id, "42")
    form.schedule_enabled.setChecked(True)
    when = (datetime.now() + timedelta(days=2)).replace(hour=9, minute=30, second=0,
                                                        microsecond=0)
    form.schedule.setDateTime(QDateTime.fromSecsSinceEpoch(int(when.timestamp())))
    draft = window.controller.draft
    assert draft.schedule == int(when.timestamp())  # local time in, epoch seconds out
    assert form.schedule.dateTime().toString("HH:mm") == "09:30"
    assert draft.settings.open_track is False and draft.settings.footer is True
    assert draft.settings.click_track is True  # untouched switch keeps the draft's value
    assert draft.tags == ("spring", "promo")
    assert draft.priority == 2 and draft.template_id == 42

    def request() -> dict[str, Any]:
        try:
            return dict(json.loads(window.preview.json_view.toPlainText()))
        except ValueError:
            return {}

    qtbot.waitUntil(lambda: request().get("schedule") == int(when.timestamp()), timeout=WAIT)
    payload = request()
    assert payload["priorityflag"] == 2
    assert payload["template_id"] == 42
    assert payload["tags"] == ["spring", "promo"]
    assert payload["settings"] == {"open_track": False, "click_track": True, "footer": True}
    form.schedule_enabled.setChecked(False)
    assert window.controller.draft.schedule == 0

