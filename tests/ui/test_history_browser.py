"""The history browser, driven like a support agent would, against the real sandbox.

The history is filled by real sends (the sending path the window uses) into this test's own
app home; the browser then finds them as the agent types, shows the message as its recipient
saw it with its delivery events, and resends to a corrected address: the new message must
land in the sandbox and in the history, linked to the original.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from netcore_desktop.core.client import RetryPolicy
from netcore_desktop.core.history import History, Outcome
from netcore_desktop.core.message import Address, Draft, Envelope
from netcore_desktop.core.profiles import Profile
from netcore_desktop.core.secrets import SecretStore
from netcore_desktop.core.sending import SendService
from netcore_desktop.sandbox import EmbeddedSandbox
from netcore_desktop.ui.history_browser import HistoryBrowser

from ._support import answer_box, dispose, page_text

WAIT = 15000
FAST_RETRY = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)


def _draft(to: str, name: str, order: str, subject: str = "Your order [%ORDER%], [%NAME%]"
           ) -> Draft:
    return Draft(
        sender=Address("shop@mail.example.org", "Example Shop"),
        subject=subject,
        body="Hi **[%NAME%]**, order [%ORDER%] ships today.",
        envelopes=(Envelope(to=(Address(to, name),), attributes={"NAME": name, "ORDER": order}),),
        tags=("orders",),
    )


@pytest.fixture
def sent(sandbox_profile: Profile) -> Iterator[dict[str, int]]:
    """Three real sends in this test's history; their attempt ids by recipient."""
    history = History()
    service = SendService(sandbox_profile, SecretStore(), history, retry=FAST_RETRY)
    ids = {}
    for to, name, order in (("asha@example.net", "Asha", "ORD-1"),
                            ("bob@example.org", "Bob", "ORD-2"),
                            ("asha.rao@exmaple.net", "Asha R", "ORD-3")):
        outcome = service.send(service.prepare(_draft(to, name, order)))
        assert outcome.ok
        ids[to] = outcome.attempt_id
    service.close()
    history.close()
    yield ids


@pytest.fixture
def browser(qtbot: Any, sent: dict[str, int]) -> Iterator[HistoryBrowser]:
    """The browser, shown, over the history the ``sent`` fixture filled."""
    widget = HistoryBrowser()
    widget.resize(1200, 700)
    widget.show()
    qtbot.waitUntil(lambda: widget.preview.renderer is not None, timeout=WAIT)
    yield widget
    dispose(widget)


def _shown(browser: HistoryBrowser) -> list[str]:
    return [browser.model.entry(r).recipients[0] for r in range(browser.model.rowCount())]




def test_search_shows_entries_as_you_type(
    qtbot: Any, browser: HistoryBrowser, sent: dict[str, int]
) -> None:
    qtbot.waitUntil(lambda: browser.model.rowCount() == 3, timeout=WAIT)
    assert browser.count_label.text() == "3 entries"

    before = browser.searches
    qtbot.keyClicks(browser.search, "asha")
    qtbot.waitUntil(lambda: sorted(_shown(browser)) == ["asha.rao@exmaple.net",
                                                         "asha@example.net"], timeout=WAIT)
    # Debounced: typing four letters ran far fewer than four searches.
    assert browser.searches - before <= 2
    qtbot.keyClicks(browser.search, " ORD-3")
    qtbot.waitUntil(lambda: _shown(browser) == ["asha.rao@exmaple.net"], timeout=WAIT)
    assert browser.count_label.text() == "1 entry"

    # The filter row narrows by recipient, status and profile the same way.
    browser.search.clear()
    browser.filters_button.click()
    assert browser.filter_row.isVisible()
    qtbot.keyClicks(browser.recipient_filter, "bob@")
    qtbot.waitUntil(lambda: _shown(browser) == ["bob@example.org"], timeout=WAIT)
    browser.recipient_filter.clear()
    browser.status_filter.setCurrentIndex(browser.status_filter.findText("refused"))
    qtbot.waitUntil(lambda: browser.model.rowCount() == 0, timeout=WAIT)
    assert browser.count_label.text() == "0 entries"
    browser.clear_filters()
    qtbot.waitUntil(lambda: browser.model.rowCount() == 3, timeout=WAIT)


def test_an_entry_shows_as_sent_with_its_request_answer_and_events(
    qtbot: Any, browser: HistoryBrowser, sent: dict[str, int], sandbox: EmbeddedSandbox
) -> None:
    qtbot.waitUntil(lambda: browser.model.rowCount() == 3, timeout=WAIT)
    with qtbot.waitSignal(browser.events_shown, timeout=WAIT):
        assert browser.select_entry(sent["bob@example.org"])
    details = browser._details
    assert details is not None
    token = details.row.tokens[0]
    # The message exactly as Bob got it: the stored HTML with his values filled in.
    qtbot.waitUntil(
        lambda: browser.preview.subject_label.text() == "Your order ORD-2, Bob", timeout=WAIT
    )
    qtbot.waitUntil(lambda: "Hi Bob, order ORD-2 ships today." in page_text(qtbot, browser),
                    timeout=WAIT)
    assert token in browser.request_view.toPlainText()
    assert "[%ORDER%]" in browser.request_view.toPlainText()  # the request as sent
    answer = browser.answer_view.toPlainText()
    assert "HTTP status: 200" in answer and details.row.message_id in answer
    # Delivery events from the sandbox, by correlation token, with normalised names.
    events = [browser.events_table.item(r, 1).text()
              for r in range(browser.events_table.rowCount())]
    assert events == ["processed", "delivered"]
    assert "the last: delivered" in browser.events_label.text()
    summary = browser.summary_view.toPlainText()
    assert f"Correlation token: {token}" in summary and "Last event:" in summary
    browser.copy_summary()
    assert QApplication.clipboard().text() == summary

    # Open as new draft hands the composed draft over, without the old token.
    with qtbot.waitSignal(browser.open_draft_requested, timeout=WAIT) as opened:
        browser.act_open_draft.trigger()
    draft = opened.args[0]
    assert draft.subject == "Your order [%ORDER%], [%NAME%]"
    assert draft.envelopes[0].attributes == {"NAME": "Bob", "ORDER": "ORD-2"}
    assert draft.envelopes[0].token == ""


def test_resend_to_a_corrected_address_lands_in_the_sandbox_linked_to_the_original(
    qtbot: Any, browser: HistoryBrowser, sent: dict[str, int], sandbox: EmbeddedSandbox
) -> None:
    original = sent["asha.rao@exmaple.net"]  # a typo in the domain
    qtbot.waitUntil(lambda: browser.model.rowCount() == 3, timeout=WAIT)
    with qtbot.waitSignal(browser.entry_shown, timeout=WAIT):
        browser.select_entry(original)
    seen: list[str] = []
    QTimer.singleShot(0, answer_box("Resend", seen))
    with qtbot.waitSignal(browser.resent, timeout=WAIT) as resent:
        browser.resend_to_corrected("asha.rao@example.net")
    done = resent.args[0]
    assert done.ok and done.entry_id == original

    # The confirmation named the address, the credits and the earlier delivery.
    (text,) = seen
    assert "asha.rao@example.net" in text and "1 credit(s)" in text
    assert "already got it once" in text

    # The sandbox got the corrected address, under a new token, with the original values.
    history = History()
    try:
        entry = history.get(done.attempt_id)
        assert entry.resend_of == original and entry.outcome is Outcome.SENT
        assert entry.recipients == ("asha.rao@example.net",)
        assert entry.tokens != history.get(original).tokens
        (record,) = sandbox.messages(token=entry.tokens[0])
        envelope = record["request"]["personalizations"][0]
        assert envelope["to"] == [{"email": "asha.rao@example.net", "name": "Asha R"}]
        assert envelope["attributes"] == {"NAME": "Asha R", "ORDER": "ORD-3"}
        assert [e.id for e in history.resends_of(original)] == [done.attempt_id]
    finally:
        history.close()
    # The browser shows the new entry, selected, linked to the original.
    qtbot.waitUntil(lambda: browser.model.rowCount() == 4, timeout=WAIT)
    qtbot.waitUntil(lambda: browser._details is not None
                    and browser._details.row.id == done.attempt_id, timeout=WAIT)
    assert f"Resend of #{original}" in browser.links_label.text()
    assert len(done.log_entries) == 1 and done.log_entries[0].status_code == 200


def test_cancelling_a_resend_sends_nothing(
    qtbot: Any, browser: HistoryBrowser, sent: dict[str, int], sandbox: EmbeddedSandbox
) -> None:
    qtbot.waitUntil(lambda: browser.model.rowCount() == 3, timeout=WAIT)
    with qtbot.waitSignal(browser.entry_shown, timeout=WAIT):
        browser.select_entry(sent["asha@example.net"])
    before = len(sandbox.messages())
    seen: list[str] = []
    QTimer.singleShot(0, answer_box("Cancel", seen))
    with qtbot.waitSignal(browser.status_message, timeout=WAIT,
                          check_params_cb=lambda text: text == "Not resent."):
        browser.act_resend.trigger()
    assert "already got it once" in seen[0]
    assert len(sandbox.messages()) == before


def test_the_window_has_the_history_beside_the_log_and_its_resends_reach_the_log(
    qtbot: Any, make_window: Any, sent: dict[str, int], sandbox: EmbeddedSandbox
) -> None:
    window = make_window()
    qtbot.waitUntil(lambda: getattr(window, "support", None) is not None, timeout=WAIT)
    support = window.support
    # A "History" tab beside the response log, and a History menu before Settings.
    qtbot.waitUntil(lambda: support.dock in window.tabifiedDockWidgets(window.log_dock),
                    timeout=WAIT)
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles.index("History") == titles.index("Settings") - 1
    assert "Ctrl+H" in support.act_history.toolTip()
    log_height = window.log_dock.height()
    support.act_history.trigger()
    browser = support.browser
    assert support.dock.isVisible() and browser.search.hasFocus()
    # Room to read: the dock grows (towards 40% of the window's height, as far as the compose
    # form's least height allows) from the response log's height, and the results list
    # gets three sevenths of the width (the actions that do not fit go into a ">>" menu).
    qtbot.waitUntil(lambda: support.dock.height() >= log_height * 1.3, timeout=WAIT)
    assert browser.table.width() >= browser.splitter.width() * 0.4
    assert len(browser.buttons) == 6
    # Back on the response log, the compose form gets its room back.
    window.log_dock.raise_()
    qtbot.waitUntil(lambda: abs(window.log_dock.height() - log_height) <= 4, timeout=WAIT)
    # And the History tab makes room again when it is chosen.
    support.dock.raise_()
    qtbot.waitUntil(lambda: support.dock.height() >= log_height * 1.3, timeout=WAIT)
    support.act_history.trigger()
    qtbot.waitUntil(lambda: browser.model.rowCount() == 3, timeout=WAIT)

    # A resend from the browser shows in the window's response log like any send.
    with qtbot.waitSignal(browser.entry_shown, timeout=WAIT):
        browser.select_entry(sent["bob@example.org"])
    seen: list[str] = []
    QTimer.singleShot(0, answer_box("Resend", seen))
    with qtbot.waitSignal(browser.resent, timeout=WAIT) as resent:
        browser.act_resend.trigger()
    assert window.log_model.rowCount() == 1
    assert window.log_model.entry(0).recipients == ("bob@example.org",)
    assert window.log_model.entry(0).status_code == 200

    # "Open as new draft" puts the (newly selected) resent message into the compose form.
    new_id = resent.args[0].attempt_id
    qtbot.waitUntil(lambda: browser._details is not None and browser._details.row.id == new_id,
                    timeout=WAIT)
    asked: list[str] = []
    # The window asks before replacing a draft with changes (the sender defaults count).
    QTimer.singleShot(0, answer_box("Yes", asked))
    with qtbot.waitSignal(browser.open_draft_requested, timeout=WAIT):
        browser.act_open_draft.trigger()
    qtbot.waitUntil(
        lambda: window.controller.draft.subject == "Your order [%ORDER%], [%NAME%]",
        timeout=WAIT,
    )
    assert window.controller.draft.envelopes[0].to[0].email == "bob@example.org"


def test_a_bulk_resend_over_two_profiles_makes_one_job_per_profile_after_asking(
    qtbot: Any, sent: dict[str, int], sandbox: EmbeddedSandbox, sandbox_profile: Profile,
) -> None:
    from netcore_desktop.core.jobs import JobStore
    from netcore_desktop.core.profiles import ProfileStore
    from netcore_desktop.ui.support import create_resend_job_task
    from netcore_desktop.ui.tasks import SupportContext, TaskRunner

    # A second account (here: the same sandbox under another profile) sent one more entry.
    other = replace(sandbox_profile, name=f"{sandbox_profile.name} (team B)")
    ProfileStore().save(other)
    SecretStore().set_api_key(other.name, sandbox.api_key)
    history = History()
    service = SendService(other, SecretStore(), history, retry=FAST_RETRY)
    outcome = service.send(service.prepare(_draft("cy@example.org", "Cy", "ORD-4")))
    service.close()
    history.close()
    assert outcome.ok and outcome.attempt_id is not None

    tasks = TaskRunner(SupportContext(), name="test-bulk-resend")
    browser = HistoryBrowser(tasks)
    browser.resize(1200, 700)
    browser.show()
    requested: list[list[int]] = []
    browser.bulk_resend_requested.connect(requested.append)
    try:
        qtbot.waitUntil(lambda: browser.model.rowCount() == 4, timeout=WAIT)
        browser.table.selectAll()

        # Cancelling makes nothing.
        seen: list[str] = []
        QTimer.singleShot(0, answer_box("Cancel", seen))
        with qtbot.waitSignal(browser.status_message, timeout=WAIT,
                              check_params_cb=lambda text: text == "No bulk job made."):
            browser.act_bulk.trigger()
        assert requested == []

        QTimer.singleShot(0, answer_box("Make 2 jobs", seen))
        browser.act_bulk.trigger()
        text = seen[1]
        assert "The 4 selected entries were sent with 2 different profiles" in text
        assert f"• 3 with “{sandbox_profile.name}”: 3 credit(s)" in text
        assert f"• 1 with “{other.name}”: 1 credit(s)" in text
        assert "About 4 credit(s) in all" in text
        assert len(requested) == 2

        # Each request becomes a job the way the window makes it (one profile each).
        made: list[int] = []
        for ids in requested:
            with qtbot.waitSignal(tasks.task_finished, timeout=WAIT):
                tasks.submit(create_resend_job_task, ids, on_done=made.append)
    finally:
        dispose(browser)
        tasks.shutdown()
    history = History()
    try:
        store = JobStore(history)
        jobs = {store.get(job_id).profile: {r.source_attempt for r in store.rows(job_id)}
                for job_id in made}
    finally:
        history.close()
    assert jobs == {sandbox_profile.name: set(sent.values()), other.name: {outcome.attempt_id}}
    # Nothing is sent before Start is pressed in a job's window.
    assert len(sandbox.messages()) == 4
