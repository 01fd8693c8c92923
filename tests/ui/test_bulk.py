"""Bulk sending from the window's panels, against the real sandbox and the real keyring.

A CSV list goes through the import dialog (mapping, bad rows, duplicates, a file in the
wrong encoding), becomes a job, is stepped through in the preview, and is sent from the bulk
panel with its progress bar reaching the end; a daily-limit 202 pauses it and says why; a
job left behind by a killed process is offered at start-up with its unknown rows.
"""

from __future__ import annotations

import csv
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QTimer

from netcore_desktop.core.history import History
from netcore_desktop.core.jobs import JobState, JobStore, NewRow, RowState, row_draft
from netcore_desktop.core.message import Address, Attachment, Draft, Envelope, build_payload
from netcore_desktop.core.profiles import Profile
from netcore_desktop.sandbox import EmbeddedSandbox
from netcore_desktop.ui.bulk_job import BulkJobPanel, InterruptedJobsDialog, recover_task
from netcore_desktop.ui.csv_import_dialog import CsvImportDialog
from netcore_desktop.ui.tasks import SupportContext, TaskRunner

from ._support import answer_box, dispose, page_text, when_modal

WAIT = 20000

TEMPLATE = Draft(
    sender=Address("news@mail.example.org", "Example News"),
    subject="Spring offer for [%FIRST_NAME%]",
    body="Hi **[%FIRST_NAME%]**, your code is [%CODE%].",
)




@pytest.fixture
def tasks(sandbox_profile: Profile) -> Iterator[TaskRunner]:
    runner = TaskRunner(SupportContext(), name="test-support")
    yield runner
    runner.shutdown()


@pytest.fixture
def panel(qtbot: Any, tasks: TaskRunner) -> Iterator[BulkJobPanel]:
    widget = BulkJobPanel(tasks)
    widget.resize(1300, 700)
    widget.show()
    qtbot.waitUntil(lambda: widget.preview.renderer is not None, timeout=WAIT)
    yield widget
    dispose(widget)


def _make_job(profile: Profile, rows: list[NewRow], **kwargs: Any) -> int:
    history = History()
    try:
        return JobStore(history).create(profile.name, TEMPLATE, rows, **kwargs)
    finally:
        history.close()


def _wait_state(qtbot: Any, panel: BulkJobPanel, state: JobState) -> None:
    """Wait until the panel's job reports ``state``."""
    qtbot.waitUntil(lambda: panel.last_progress is not None
                    and panel.last_progress.state is state, timeout=WAIT)


def _click_answering(button: Any, answer: str) -> str:
    """Click ``button`` and answer the question it asks with ``answer``; the question."""
    seen: list[str] = []
    QTimer.singleShot(0, answer_box(answer, seen))
    button.click()
    return seen[0]



def test_the_csv_dialog_maps_columns_lists_bad_rows_and_duplicates_and_makes_a_job(
    qtbot: Any, tasks: TaskRunner, sandbox_profile: Profile, tmp_path: Path
) -> None:
    path = tmp_path / "spring.csv"
    path.write_text(
        "E-mail;First name;Code\n"
        "asha@example.net;Asha;A1\n"
        "not-an-address;X;X1\n"
        "bob@example.org;Bob;B2\n"
        "ASHA@example.net;Asha again;A3\n"
        "carol@example.org;Carol\n",
        encoding="utf-8-sig",
    )
    dialog = CsvImportDialog(tasks, TEMPLATE, sandbox_profile.name)
    dialog.show()
    with qtbot.waitSignal(dialog.mapped, timeout=WAIT):
        dialog.open_file(path)
    assert dialog.email_column.currentText() == "E-mail"
    assert dialog.name_column.currentText() == "First name"
    assert "5 data rows" in dialog.file_info.text() and "semicolon" in dialog.file_info.text()
    # Bad rows with line numbers and reasons; the repeated address with both lines.
    assert dialog.problems.rowCount() == 2
    assert [dialog.problems.item(r, 0).text() for r in range(2)] == ["3", "6"]
    assert "not a valid email address" in dialog.problems.item(0, 2).text()
    assert "header has 3 column(s)" in dialog.problems.item(1, 2).text()
    assert dialog.duplicates.item(0, 0).text() == "asha@example.net"
    assert dialog.duplicates.item(0, 1).text() == "2, 5"
    assert dialog.result_tabs.tabText(0) == "Bad rows (2)"
    assert "2 row(s) will be in the job" in dialog.summary_label.text()
    # The message's [%FIRST_NAME%] and [%CODE%] both have a column.
    assert "all have a column" in dialog.placeholder_label.text()
    dialog.skip_duplicates.setChecked(False)
    assert "3 row(s) will be in the job" in dialog.summary_label.text()
    dialog.skip_duplicates.setChecked(True)

    with qtbot.waitSignal(dialog.job_created, timeout=WAIT) as created:
        dialog.create_button.click()
    history = History()
    try:
        rows = JobStore(history).rows(created.args[0])
    finally:
        history.close()
    assert [(r.line, r.email, r.name, dict(r.attributes)) for r in rows] == [
        (2, "asha@example.net", "Asha", {"FIRST_NAME": "Asha", "CODE": "A1"}),
        (4, "bob@example.org", "Bob", {"FIRST_NAME": "Bob", "CODE": "B2"}),
    ]
    dialog.close()


def test_a_file_in_the_wrong_encoding_is_explained_and_can_be_read_anyway(
    qtbot: Any, tasks: TaskRunner, sandbox_profile: Profile, tmp_path: Path
) -> None:
    path = tmp_path / "excel.txt"
    path.write_bytes("email\tFirst name\nzoe@example.org\tZoé\n".encode("utf-16"))
    dialog = CsvImportDialog(tasks, TEMPLATE, sandbox_profile.name)
    dialog.show()
    with qtbot.waitSignal(dialog.file_read, timeout=WAIT):
        dialog.open_file(path)
    assert dialog.error_label.isVisible()
    assert "UTF-16" in dialog.error_label.text() and "CSV UTF-8" in dialog.error_label.text()
    assert dialog.encoding_button.isVisible()
    assert dialog.encoding_button.text() == "Read it as UTF-16"
    assert not dialog.create_button.isEnabled()
    with qtbot.waitSignal(dialog.mapped, timeout=WAIT):
        dialog.encoding_button.click()
    assert not dialog.error_label.isVisible()
    assert dialog.imported is not None and dialog.imported.rows[0].name == "Zoé"
    # The message also uses [%CODE%], which this list lacks: said before any job exists.
    assert "[%CODE%]" in dialog.placeholder_label.text()
    assert "flagged" in dialog.placeholder_label.text()

    # An empty file and a list without addresses each say what is wrong.
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with qtbot.waitSignal(dialog.file_read, timeout=WAIT):
        dialog.open_file(empty)
    assert "“empty.csv” is empty" in dialog.error_label.text()
    names = tmp_path / "names.csv"
    names.write_text("Name,City\nAsha,Pune\n", encoding="utf-8")
    with qtbot.waitSignal(dialog.mapped, timeout=WAIT):
        dialog.open_file(names)
    assert "Columns found: “Name”, “City”" in dialog.error_label.text()
    assert not dialog.create_button.isEnabled()
    dialog.close()


def test_a_bulk_job_steps_through_rows_then_its_progress_reaches_the_end(
    qtbot: Any, panel: BulkJobPanel, sandbox: EmbeddedSandbox, sandbox_profile: Profile,
    tmp_path: Path,
) -> None:
    rows = [NewRow(f"user{i}@example.net", f"User {i}", {"FIRST_NAME": f"U{i}", "CODE": f"C{i}"})
            for i in range(40)]
    rows[3] = NewRow("flagged@example.net", "Flagged", {"FIRST_NAME": "Flo"})  # no CODE
    job_id = _make_job(sandbox_profile, rows, concurrency=4)
    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        panel.open_job(job_id)
    assert panel.model.rowCount() == 40
    assert "1 row(s) have placeholders with no value" in panel.flag_label.text()
    assert panel.act_start.isEnabled() and not panel.act_pause.isEnabled()

    # The preview steps through the rows, each with its own values.
    qtbot.waitUntil(lambda: panel.preview.subject_label.text() == "Spring offer for U0",
                    timeout=WAIT)
    panel.act_next.trigger()
    qtbot.waitUntil(lambda: panel.preview.subject_label.text() == "Spring offer for U1",
                    timeout=WAIT)
    # Read the page only once row 2's frame has loaded (a read during a load is dropped).
    qtbot.waitUntil(lambda: panel.preview.shown_generation == 2, timeout=WAIT)
    qtbot.waitUntil(lambda: "your code is C1." in page_text(qtbot, panel), timeout=WAIT)
    panel.act_next_flagged.trigger()
    qtbot.waitUntil(lambda: panel.preview.subject_label.text() == "Spring offer for Flo",
                    timeout=WAIT)
    assert "⚠ no value for [%CODE%]" in panel.row_label.text()

    # Start asks first (credits, the flagged row); skipping it sends the other 39.
    asked = _click_answering(panel.start_button, "Skip flagged rows and send")
    assert "Send 40 message(s)" in asked and "40 credit(s)" in asked
    assert "[%CODE%]" in asked
    _wait_state(qtbot, panel, JobState.FINISHED)
    assert panel.progress_bar.value() == panel.progress_bar.maximum() == 40
    assert panel.counts_label.text().startswith("Sent 39 · Queued 0 · Failed 0 · Left 0")
    assert "Skipped 1" in panel.counts_label.text()
    assert "Finished" in panel.reason_label.text()
    assert len(sandbox.messages()) == 39
    qtbot.waitUntil(lambda: panel.model.row_at(0).state is RowState.SENT, timeout=WAIT)
    assert len(panel.model.row_at(0).message_id) == 32
    qtbot.waitUntil(lambda: panel.model.row_at(3).state is RowState.SKIPPED, timeout=WAIT)

    # The results CSV has one line per row.
    out = tmp_path / "results.csv"
    with qtbot.waitSignal(panel.status_message, timeout=WAIT):
        panel.save_results(str(out))
    with out.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 40 and table[0]["state"] == "sent" and table[3]["state"] == "skipped"


def test_a_daily_limit_pauses_the_job_and_says_why(
    qtbot: Any, panel: BulkJobPanel, sandbox: EmbeddedSandbox, sandbox_profile: Profile
) -> None:
    sandbox.set_faults(daily_limit=3)
    rows = [NewRow(f"d{i}@example.net", "", {"FIRST_NAME": "D", "CODE": str(i)})
            for i in range(10)]
    job_id = _make_job(sandbox_profile, rows, concurrency=1)
    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        panel.open_job(job_id)
    assert panel.start_job(confirm=False)
    _wait_state(qtbot, panel, JobState.PAUSED)
    assert panel.reason_bar.isVisible()
    assert "daily limit" in panel.reason_label.text()
    assert panel.counts_label.text().startswith("Sent 3 · Queued 1 · Failed 0 · Left 6")
    assert panel.act_resume.isEnabled() and not panel.act_pause.isEnabled()

    sandbox.set_faults(daily_limit=None)
    panel.resume_button.click()
    _wait_state(qtbot, panel, JobState.FINISHED)
    assert panel.counts_label.text().startswith("Sent 9 · Queued 1 · Failed 0 · Left 0")
    assert len(sandbox.messages()) == 10  # the queued row was not sent again


def test_an_interrupted_job_is_offered_at_start_up_with_its_unknown_rows(
    qtbot: Any, tasks: TaskRunner, panel: BulkJobPanel, sandbox: EmbeddedSandbox,
    sandbox_profile: Profile,
) -> None:
    rows = [NewRow(f"k{i}@example.net", "", {"FIRST_NAME": "K", "CODE": str(i)})
            for i in range(8)]
    job_id = _make_job(sandbox_profile, rows)
    # What a process killed mid-job leaves: a running job whose owner is gone, and rows
    # claimed for sending whose answer never came.
    history = History()
    store = JobStore(history)
    gone = subprocess.Popen(["true"])  # a process of this machine that has ended
    gone.wait()
    store.acquire(job_id, f"{socket.gethostname()}:{gone.pid}")
    for _ in range(2):
        # Claimed and recorded in the history (as every send is, before it goes out).
        row = store.claim_next(job_id)
        assert row is not None
        draft = row_draft(TEMPLATE, row)
        history.record_attempt(
            draft=draft, payload=build_payload(draft), profile=sandbox_profile.name,
            transport="api", api_version="v6", endpoint=sandbox.base_url, job_id=job_id,
        )
    store.claim_next(job_id)  # claimed, but killed before its attempt was recorded
    history.close()

    found: list[Any] = []
    with qtbot.waitSignal(tasks.task_finished, timeout=WAIT):
        tasks.submit(recover_task, on_done=found.append)
    (jobs,) = found
    assert [s.job.id for s in jobs] == [job_id]
    dialog = InterruptedJobsDialog(jobs)
    item = dialog.list.item(0).text()
    assert "0 of 8 done" not in item and "2 unknown" in item and "6 left" in item
    dialog.open_button.click()
    assert dialog.chosen == job_id

    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        panel.open_job(job_id)
    assert panel.unknown_bar.isVisible()
    assert "2 row(s) are unknown" in panel.unknown_label.text()
    assert panel.filter.currentText().startswith("Unknown")
    assert panel.proxy.rowCount() == 2
    assert "Interrupted" in panel.reason_label.text()

    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        panel.leave_unknown_button.click()
    assert "Send 6 message(s)" in _click_answering(panel.resume_button, "Send")
    _wait_state(qtbot, panel, JobState.FINISHED)
    assert len(sandbox.messages()) == 6  # the two unknown rows were never resent
    assert "Skipped 2" in panel.counts_label.text()


def test_every_csv_row_carries_the_drafts_cc_bcc_reply_to_tags_and_attachments(
    qtbot: Any, tasks: TaskRunner, panel: BulkJobPanel, sandbox: EmbeddedSandbox,
    sandbox_profile: Profile, tmp_path: Path,
) -> None:
    # The marketer's draft: a sample recipient in To, the manager in Cc, an archive Bcc.
    template = replace(
        TEMPLATE,
        envelopes=(Envelope(
            to=(Address("sample@example.net"),),
            cc=(Address("manager@example.org", "Manager"),),
            headers={"List-Unsubscribe": "<mailto:unsubscribe@example.org>"},
        ),),
        bcc=(Address("archive@example.org"),),
        reply_to="support@example.org",
        tags=("spring",),
        attachments=(Attachment("terms.txt", b"The terms."),),
    )
    path = tmp_path / "list.csv"
    path.write_text(
        "email,First name,Code\n"
        "asha@example.net,Asha,A1\n"
        "bob@example.org,Bob,B2\n"
        "manager@example.org,Manager,M3\n",  # the manager is also on the list
        encoding="utf-8",
    )
    dialog = CsvImportDialog(tasks, template, sandbox_profile.name)
    dialog.show()
    with qtbot.waitSignal(dialog.mapped, timeout=WAIT):
        dialog.open_file(path)
    summary = dialog.summary_label.text()
    assert "3 row(s) will be in the job" in summary
    assert "Cc Manager <manager@example.org>" in summary
    assert "Bcc archive@example.org" in summary
    # Three credits a row (To, Cc, Bcc), but the manager's own row is not copied to them.
    assert "8 credit(s) in all" in summary
    with qtbot.waitSignal(dialog.job_created, timeout=WAIT) as created:
        dialog.create_button.click()
    dialog.close()

    with qtbot.waitSignal(panel.loaded, timeout=WAIT):
        panel.open_job(created.args[0])
    # The row preview's headers show the Cc the message goes with.
    qtbot.waitUntil(lambda: "Cc: Manager <manager@example.org>"
                    in panel.preview.headers_view.toPlainText(), timeout=WAIT)
    asked = _click_answering(panel.start_button, "Send")
    assert "Send 3 message(s)" in asked and "8 credit(s)" in asked
    assert "Every message also goes to Cc Manager <manager@example.org>" in asked
    _wait_state(qtbot, panel, JobState.FINISHED)

    history = History()
    try:
        rows = JobStore(history).rows(created.args[0])
    finally:
        history.close()
    assert [r.state for r in rows] == [RowState.SENT] * 3
    for row in rows:
        (stored,) = sandbox.messages(token=row.token)
        request = stored["request"]
        (env,) = request["personalizations"]
        assert env["to"] == [{"email": row.email, "name": row.name}]
        assert env["token_to"] == row.token
        if row.email == "manager@example.org":
            # The manager gets the message once, as its To, and pays once.
            assert "cc" not in env
        else:
            assert env["cc"] == [{"email": "manager@example.org", "name": "Manager"}]
            assert env["token_cc"] == row.token
        assert env["headers"] == {"List-Unsubscribe": "<mailto:unsubscribe@example.org>"}
        assert request["bcc"] == [{"email": "archive@example.org"}]
        assert request["reply_to"] == [{"email": "support@example.org"}]
        assert request["tags"] == ["spring"]
        assert [a["name"] for a in request["attachments"]] == ["terms.txt"]
    # Nobody outside the list, the Cc and the Bcc was written to.
    assert len(sandbox.messages()) == 3


def _start_up_question(qtbot: Any) -> list[str]:
    """The jobs listed by the next unfinished-jobs question; it is then closed unanswered."""
    listed: list[str] = []

    def read_and_close(dialog: InterruptedJobsDialog) -> None:
        listed.extend(dialog.list.item(i).text() for i in range(dialog.list.count()))
        dialog.reject()

    QTimer.singleShot(0, when_modal(InterruptedJobsDialog, read_and_close))
    qtbot.waitUntil(lambda: bool(listed), timeout=WAIT)
    return listed


def test_the_start_up_question_lists_jobs_of_earlier_sessions_only(
    qtbot: Any, make_window: Any, sandbox_profile: Profile
) -> None:
    row = NewRow(email="ana@example.net", name="Ana", attributes={"FIRST_NAME": "Ana",
                                                                  "CODE": "A1"})
    earlier = _make_job(sandbox_profile, [row], name="Left from yesterday")
    window = make_window()
    qtbot.waitUntil(lambda: getattr(window, "support", None) is not None, timeout=WAIT)
    support = window.support
    listed = _start_up_question(qtbot)
    assert len(listed) == 1 and listed[0].startswith(f"#{earlier} Left from yesterday")

    # A job made in this session (an import moments after the window opened) is not one the
    # person needs reminding of, when the question comes.
    _make_job(sandbox_profile, [row], name="Made just now")
    QTimer.singleShot(0, support._check_unfinished)
    listed = _start_up_question(qtbot)
    assert [text.split(":")[0] for text in listed] == [f"#{earlier} Left from yesterday"]
    # Asked for (Ctrl+J), every unfinished job is listed.
    support.act_jobs.trigger()
    listed = _start_up_question(qtbot)
    assert len(listed) == 2 and any("Made just now" in text for text in listed)
