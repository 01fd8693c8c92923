"""Bulk jobs against the real sandbox: every row settles, nothing is ever sent twice.

The sandbox's own record (its stored messages, looked up by correlation token) is the judge
of what was sent: a row counts as sent only if the sandbox holds its token exactly once. The
crash test kills a real process running a job with SIGKILL and resumes the job here.
"""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from netcore_desktop.core.client import NetcoreClient, RetryPolicy
from netcore_desktop.core.contract import Region
from netcore_desktop.core.csv_import import import_csv
from netcore_desktop.core.history import (
    History,
    Outcome,
    fetch_events,
    support_summary,
)
from netcore_desktop.core.jobs import (
    JobError,
    JobKind,
    JobProgress,
    JobRunner,
    JobState,
    JobStore,
    NewRow,
    Reason,
    RowState,
    flag_rows,
    preview_row,
    reconcile_unknown,
    row_credits,
    row_draft,
)
from netcore_desktop.core.message import Address, Draft, Envelope
from netcore_desktop.core.profiles import Profile
from netcore_desktop.core.secrets import SecretStore
from netcore_desktop.core.sending import SendService
from netcore_desktop.sandbox import EmbeddedSandbox

FAST_RETRY = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)
ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = Draft(
    sender=Address("news@mail.example.org", "Example News"),
    subject="Your code [%CODE%], [%FIRST_NAME%]",
    body="Hi **[%FIRST_NAME%]**,\n\nyour code is [%CODE%].",
    tags=("bulk-test",),
)


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    with History(tmp_path / "history.sqlite3") as h:
        yield h


def make_service(
    sandbox: EmbeddedSandbox, history: History, *, key: str | None = None,
    retry: RetryPolicy = FAST_RETRY, timeout: float = 10.0,
) -> SendService:
    profile = Profile(
        name="sbx", region=Region.CUSTOM, base_url=sandbox.base_url,
        sender_email="news@mail.example.org", is_sandbox=True,
    )
    client = NetcoreClient(sandbox.base_url, key or sandbox.api_key, retry=retry,
                           timeout=timeout)
    return SendService(profile, SecretStore(service="netcore-desktop-jobs-test"), history,
                       client=client)


@pytest.fixture
def service(sandbox: EmbeddedSandbox, history: History) -> Iterator[SendService]:
    s = make_service(sandbox, history)
    yield s
    s.client().close()


def rows(n: int, start: int = 0) -> list[NewRow]:
    return [
        NewRow(f"user{i}@example.net", f"User {i}", {"FIRST_NAME": f"U{i}", "CODE": f"C{i}"})
        for i in range(start, start + n)
    ]


def sandbox_tokens(sandbox: EmbeddedSandbox) -> Counter[str]:
    """How many accepted (stored) messages carry each correlation token."""
    seen: Counter[str] = Counter()
    for message in sandbox.messages():
        for env in message["request"].get("personalizations", []):
            seen[env.get("token_to", "")] += 1
    return seen


def run(service: SendService, job_id: int, timeout: float = 60.0, **kwargs: object) -> JobRunner:
    runner = JobRunner(service, job_id, **kwargs)  # type: ignore[arg-type]
    runner.start()
    assert runner.wait(timeout), "the job did not end in time"
    return runner


# --- a whole job ---------------------------------------------------------------------------------


def test_a_300_row_csv_job_with_a_fifth_failing_ends_with_every_row_settled(
    sandbox: EmbeddedSandbox, history: History, tmp_path: Path
) -> None:
    lines = ["email,first name,code"] + [
        f"user{i}@example.net,U{i},C{i}" for i in range(300)
    ]
    path = tmp_path / "list.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    imported = import_csv(path)
    assert len(imported.recipients()) == 300

    sandbox.set_faults(fail_rate=0.2, seed=7)
    # Two tries per send: about 4% of rows fail for good, so failures really happen.
    service = make_service(sandbox, history, retry=RetryPolicy(max_tries=2, base_delay_s=0.01,
                                                               max_delay_s=0.02))
    store = JobStore(history)
    job_id = store.create("sbx", TEMPLATE, imported.recipients(), source=path.name,
                          concurrency=6)
    updates: list[JobProgress] = []
    runner = run(service, job_id, on_progress=updates.append, backoff_base=0.01,
                 backoff_max=0.05)

    progress = store.progress(job_id)
    assert progress.state is JobState.FINISHED and progress.total == 300
    job_rows = store.rows(job_id)
    assert all(r.state.is_final for r in job_rows)
    states = Counter(r.state for r in job_rows)
    assert set(states) <= {RowState.SENT, RowState.FAILED}
    assert states[RowState.FAILED] > 0 and states[RowState.SENT] > 250
    assert runner.progress.sent == states[RowState.SENT]

    # The sandbox holds every sent row's token exactly once and nothing else.
    seen = sandbox_tokens(sandbox)
    sent = {r.token for r in job_rows if r.state is RowState.SENT}
    assert set(seen) == sent and set(seen.values()) == {1}
    # Each row is one history attempt of this job, linked both ways, with the row's answer.
    for r in job_rows[:40]:
        entry = history.get(r.attempt_id or -1)
        assert entry.job_id == job_id and entry.tokens == (r.token,)
        assert entry.recipients == (r.email,)
        assert (entry.outcome is Outcome.SENT) == (r.state is RowState.SENT)
        if r.state is RowState.SENT:
            assert entry.message_id == r.message_id != ""
            message = sandbox.message(r.message_id)
            assert message is not None
            assert message["request"]["personalizations"][0]["attributes"]["CODE"] == (
                r.attributes["CODE"]
            )
    # Progress came in as it went, ending with the final counts.
    assert len(updates) >= 2 and updates[-1].state is JobState.FINISHED
    assert updates[-1].sent == states[RowState.SENT] and updates[-1].left == 0

    # Failed rows can be sent again (fresh tokens), and then each lands once.
    failed = [r for r in job_rows if r.state is RowState.FAILED]
    sandbox.set_faults(fail_rate=0.0)
    assert store.retry_rows(job_id) == len(failed)
    run(service, job_id)
    retried = [store.row(job_id, r.row) for r in failed]
    assert all(r.state is RowState.SENT and r.token != o.token for r, o in zip(retried, failed,
                                                                               strict=True))
    seen = sandbox_tokens(sandbox)
    assert set(seen.values()) == {1} and len(seen) == 300
    assert not {r.token for r in failed} & set(seen)

    # The results file has one line per row with its outcome.
    out = tmp_path / "results.csv"
    assert store.write_results_csv(job_id, out) == 300
    with out.open(encoding="utf-8-sig", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 300
    assert list(table[0])[:7] == [
        "row", "email", "state", "status", "message_id", "token", "error",
    ]
    assert {t["state"] for t in table} == {"sent"}
    assert all(t["status"] == "200" and len(t["message_id"]) == 32 for t in table)
    assert table[0]["email"] == "user0@example.net"


def test_a_daily_limit_202_pauses_the_job_and_says_why(
    sandbox: EmbeddedSandbox, service: SendService
) -> None:
    sandbox.set_faults(daily_limit=5)
    store = JobStore(service.history)
    job_id = store.create("sbx", TEMPLATE, rows(12), concurrency=1)
    runner = JobRunner(service, job_id)
    runner.start()
    assert runner.wait_for(lambda p: p.state is JobState.PAUSED, timeout=30)
    paused = store.progress(job_id)
    assert paused.state is JobState.PAUSED and paused.reason_code == Reason.DAILY_LIMIT
    assert "daily limit" in paused.reason and "202" in paused.reason
    assert (paused.sent, paused.queued, paused.left) == (5, 1, 6)
    time.sleep(0.3)  # nothing more goes out while paused
    assert store.progress(job_id).left == 6 and len(sandbox.messages()) == 6

    sandbox.set_faults(daily_limit=None)
    runner.resume()
    assert runner.wait_for(lambda p: p.state is JobState.FINISHED, timeout=30)
    assert runner.wait(10)
    done = store.progress(job_id)
    assert (done.sent, done.queued, done.left) == (11, 1, 0)
    # The queued row was accepted once and never sent again.
    seen = sandbox_tokens(sandbox)
    assert len(seen) == 12 and set(seen.values()) == {1}


def test_a_refused_key_stops_the_job_and_asks(
    sandbox: EmbeddedSandbox, history: History
) -> None:
    wrong = make_service(sandbox, history, key="not-the-key")
    store = JobStore(history)
    job_id = store.create("sbx", TEMPLATE, rows(20), concurrency=4)
    runner = JobRunner(wrong, job_id)
    runner.start()
    assert runner.wait_for(lambda p: p.state is JobState.PAUSED, timeout=30)
    runner.stop()
    progress = store.progress(job_id)
    assert progress.state is JobState.PAUSED and progress.reason_code == Reason.AUTH
    assert "key was refused" in progress.reason and "resume" in progress.reason
    # Nothing was refused for good: the rows wait for the key to be fixed.
    assert progress.left == 20 and progress.failed == 0
    assert len(sandbox.messages()) == 0
    assert sum(r.sends for r in store.rows(job_id)) <= 4  # at most the first requests in flight
    wrong.client().close()

    # With the right key, resuming sends every row exactly once.
    right = make_service(sandbox, history)
    run(right, job_id)
    assert store.progress(job_id).sent == 20
    seen = sandbox_tokens(sandbox)
    assert len(seen) == 20 and set(seen.values()) == {1}
    right.client().close()


def test_a_forbidden_403_midway_pauses_too(sandbox: EmbeddedSandbox, service: SendService) -> None:
    store = JobStore(service.history)
    job_id = store.create("sbx", TEMPLATE, rows(6), concurrency=1)
    sandbox.force_status(403, 1)
    runner = JobRunner(service, job_id)
    runner.start()
    assert runner.wait_for(lambda p: p.state is JobState.PAUSED, timeout=30)
    assert store.progress(job_id).reason_code == Reason.AUTH
    runner.resume()
    assert runner.wait(30)
    assert store.progress(job_id).sent == 6


def test_5xx_bursts_slow_the_job_down_and_a_failing_service_pauses_it(
    sandbox: EmbeddedSandbox, history: History
) -> None:
    once = make_service(sandbox, history, retry=RetryPolicy(max_tries=1))
    store = JobStore(history)
    job_id = store.create("sbx", TEMPLATE, rows(10), concurrency=1)
    sandbox.force_status(500, 50)
    started = time.monotonic()
    runner = JobRunner(once, job_id, backoff_base=0.05, backoff_max=0.2, pause_after_failures=4)
    runner.start()
    assert runner.wait_for(lambda p: p.state is JobState.PAUSED, timeout=30)
    progress = store.progress(job_id)
    assert progress.reason_code == Reason.FAILING and "failed 4 rows in a row" in progress.reason
    # Backoff: the four failures were spread out (0.05 + 0.1 + 0.2 s at least).
    assert time.monotonic() - started >= 0.3
    assert progress.count(RowState.FAILED) >= 4 and progress.left > 0
    sandbox.force_status(200, 0)
    sandbox.set_faults(force_status=None)
    runner.resume()
    assert runner.wait(30)
    final = store.progress(job_id)
    assert final.state is JobState.FINISHED and final.sent + final.failed == 10
    once.client().close()


def test_pause_resume_and_cancel(sandbox: EmbeddedSandbox, service: SendService) -> None:
    sandbox.set_faults(latency_ms=40)
    store = JobStore(service.history)
    job_id = store.create("sbx", TEMPLATE, rows(40), concurrency=2)
    runner = JobRunner(service, job_id)
    runner.start()
    assert runner.wait_for(lambda p: p.sent >= 4, timeout=30)
    runner.pause()
    assert runner.wait_for(lambda p: p.count(RowState.SENDING) == 0, timeout=10)
    held = store.progress(job_id)
    assert held.state is JobState.PAUSED and held.reason_code == Reason.PAUSED
    time.sleep(0.3)
    assert store.progress(job_id).sent == held.sent  # nothing more while paused
    runner.resume()
    assert runner.wait_for(lambda p: p.sent >= held.sent + 4, timeout=30)
    runner.cancel()
    assert runner.wait(30)
    final = store.progress(job_id)
    assert final.state is JobState.CANCELLED
    assert final.count(RowState.CANCELLED) > 0 and final.left == 0
    assert final.sent + final.count(RowState.CANCELLED) + final.unknown == 40
    assert len(sandbox_tokens(sandbox)) == final.sent
    with pytest.raises(JobError):
        JobRunner(service, job_id).start()


def test_answers_that_never_arrive_are_unknown_and_not_resent(
    sandbox: EmbeddedSandbox, service: SendService
) -> None:
    store = JobStore(service.history)
    job_id = store.create("sbx", TEMPLATE, rows(30), concurrency=3)
    sandbox.set_faults(drop_rate=0.3, seed=3)
    run(service, job_id)
    final = store.progress(job_id)
    assert final.state is JobState.FINISHED and final.unknown > 0
    assert final.sent + final.unknown == 30
    # Nothing is sent twice: the client never retries a request that may have arrived.
    seen = sandbox_tokens(sandbox)
    assert set(seen.values()) <= {1}
    unknown = store.rows(job_id, [RowState.UNKNOWN])
    assert all("may have been sent" in r.error for r in unknown)

    # The person decides: resend them (fresh tokens) and each lands once.
    sandbox.set_faults(drop_rate=0.0)
    assert store.resolve_unknown(job_id, None, "resend") == len(unknown)
    run(service, job_id)
    assert store.progress(job_id).sent == 30


# --- crash safety ------------------------------------------------------------------------------


def _count(path: Path, job_id: int, state: str) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(conn.execute(
            "SELECT count(*) FROM job_rows WHERE job_id = ? AND state = ?", (job_id, state)
        ).fetchone()[0])
    finally:
        conn.close()


def test_a_job_killed_mid_way_resumes_and_sends_each_row_exactly_once(
    sandbox: EmbeddedSandbox, history: History, tmp_path: Path
) -> None:
    store = JobStore(history)
    job_id = store.create("sbx", TEMPLATE, rows(60), concurrency=4)
    sandbox.set_faults(latency_ms=150)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.core._job_child", str(history.path), sandbox.base_url,
         str(job_id), "4"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert child.stdin is not None
    child.stdin.write(sandbox.api_key + "\n")
    child.stdin.close()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (_count(history.path, job_id, "sent") >= 12
                    and _count(history.path, job_id, "sending") >= 1):
                break
            time.sleep(0.02)
        else:
            pytest.fail("the child never got going")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
        assert child.stdout is not None
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    time.sleep(0.5)  # let the sandbox finish the requests that were under way
    sandbox.set_faults(latency_ms=0)

    # Reopening finds the job interrupted; the rows in flight are "unknown", never pending.
    reopened = JobStore(History(history.path))
    recovered = reopened.recover()
    assert [j.id for j in recovered] == [job_id]
    job = reopened.get(job_id)
    assert job.state is JobState.PAUSED and job.reason_code == Reason.INTERRUPTED
    assert "unknown" in job.reason
    assert any(j.id == job_id for j in reopened.unfinished())  # offered at start-up
    unknown_before = reopened.rows(job_id, [RowState.UNKNOWN])
    sent_before = {r.row for r in reopened.rows(job_id, [RowState.SENT])}
    assert 1 <= len(unknown_before) <= 4 and len(sent_before) >= 12
    assert not reopened.rows(job_id, [RowState.SENDING])
    for r in unknown_before:
        assert r.attempt_id is not None  # linked to the attempt recorded before sending
        assert reopened.history.get(r.attempt_id).outcome is Outcome.UNKNOWN

    # Resuming sends the rest, and never the unknown rows.
    resumed = make_service(sandbox, reopened.history)
    run(resumed, job_id)
    final = reopened.progress(job_id)
    assert final.state is JobState.FINISHED
    assert final.sent == 60 - len(unknown_before) and final.unknown == len(unknown_before)
    seen = sandbox_tokens(sandbox)
    all_rows = reopened.rows(job_id)
    assert set(seen) <= {r.token for r in all_rows}  # nothing the job did not make
    assert all(n == 1 for n in seen.values())  # no row twice
    for r in all_rows:
        if r.state is RowState.SENT:
            assert seen[r.token] == 1
        else:
            assert r.state is RowState.UNKNOWN and seen[r.token] <= 1

    # Asked about, the service's events confirm those that did arrive; the rest, with the
    # person's consent, are sent once more under fresh tokens.
    arrived = {r.row for r in unknown_before if seen[r.token] == 1}
    assert reconcile_unknown(reopened, resumed.client(), job_id) == len(arrived)
    still = reopened.rows(job_id, [RowState.UNKNOWN])
    assert {r.row for r in still} == {r.row for r in unknown_before} - arrived
    reopened.resolve_unknown(job_id, [r.row for r in still], "resend")
    run(resumed, job_id)
    assert reopened.progress(job_id).sent == 60
    seen = sandbox_tokens(sandbox)
    assert all(n == 1 for n in seen.values()) and len(seen) == 60
    resumed.client().close()
    reopened.history.close()


def test_a_job_another_live_process_runs_is_not_taken_over(
    service: SendService, history: History
) -> None:
    store = JobStore(history)
    job_id = store.create("sbx", TEMPLATE, rows(2))
    store.acquire(job_id, f"{os.uname().nodename}:{os.getppid()}")  # a live process
    assert store.recover() == []
    with pytest.raises(JobError, match="another Netcore Desktop"):
        JobRunner(service, job_id).start()


# --- before and after ----------------------------------------------------------------------------


def test_the_preview_steps_through_rows_and_flags_unfilled_placeholders(
    history: History,
) -> None:
    template = Draft(
        sender=Address("news@mail.example.org"),
        subject="Hello [%FIRST_NAME%]",
        body="Your plan: **[%PLAN%]**",
        envelopes=(Envelope(to=(Address("x@example.org"),), headers={"X-Campaign": "spring"}),),
    )
    new = [
        NewRow("asha@example.net", "Asha", {"FIRST_NAME": "Asha", "PLAN": "Gold"}),
        NewRow("bob@example.org", "Bob", {"FIRST_NAME": "Bob", "PLAN": ""}),
        NewRow("cy@example.org", "", {"FIRST_NAME": "Cy"}),
    ]
    store = JobStore(history)
    job_id = store.create("sbx", template, new)
    job_rows = store.rows(job_id)
    first = preview_row(template, job_rows[0])
    assert first.subject == "Hello Asha" and first.to == "Asha <asha@example.net>"
    assert "<strong>Gold</strong>" in first.html and first.missing == ()
    assert preview_row(template, job_rows[2]).missing == ("PLAN",)
    assert flag_rows(template, job_rows) == {2: ("PLAN",), 3: ("PLAN",)}
    assert store.skip_rows(job_id, [2, 3], "Unfilled [%PLAN%]") == 2
    assert store.progress(job_id).skipped == 2
    job = store.get(job_id)
    assert job.kind is JobKind.DRAFT and job.draft is not None
    assert job.draft.envelopes[0].headers == {"X-Campaign": "spring"}
    assert job.label == "Hello [%FIRST_NAME%]"


def test_rows_inherit_the_templates_cc_and_bcc_once_each_and_pay_for_them(
    sandbox: EmbeddedSandbox, history: History, service: SendService
) -> None:
    template = Draft(
        sender=Address("news@mail.example.org"),
        subject="Hi [%FIRST_NAME%]",
        body="Hello",
        envelopes=(Envelope(to=(Address("sample@example.org"),),
                            cc=(Address("boss@example.org", "Boss"),),
                            bcc=(Address("audit@example.org"),)),),
        bcc=(Address("archive@example.org"),),
    )
    new = [NewRow("asha@example.net", "Asha", {"FIRST_NAME": "Asha"}),
           NewRow("BOSS@example.org", "Boss", {"FIRST_NAME": "Boss"}),
           NewRow("archive@example.org", "", {"FIRST_NAME": "Arch"})]
    # Four credits a row (To, Cc, Bcc, global Bcc); a listed Cc/Bcc address is not copied
    # to itself, so its row costs one less.
    assert row_credits(template, new) == 4 + 3 + 3
    assert row_credits(template, new) == sum(row_draft(template, r).credit_count() for r in new)
    store = JobStore(history)
    job_id = store.create("sbx", template, new)
    job = store.get(job_id)
    assert job.draft is not None and job.draft.envelopes[0].cc == template.envelopes[0].cc
    assert preview_row(job.draft, store.rows(job_id)[0]).cc == "Boss <boss@example.org>"

    run(service, job_id)
    by_to = {}
    for row in store.rows(job_id):
        assert row.state is RowState.SENT
        (message,) = sandbox.messages(token=row.token)
        by_to[row.email] = message["request"]
    asha = by_to["asha@example.net"]
    assert asha["personalizations"][0]["cc"] == [{"email": "boss@example.org", "name": "Boss"}]
    assert asha["personalizations"][0]["bcc"] == [{"email": "audit@example.org"}]
    assert asha["bcc"] == [{"email": "archive@example.org"}]
    assert "cc" not in by_to["BOSS@example.org"]["personalizations"][0]
    assert "bcc" not in by_to["archive@example.org"]


def test_a_resend_job_sends_history_entries_again_linked_to_them(
    sandbox: EmbeddedSandbox, service: SendService
) -> None:
    history = service.history
    originals = []
    for i in range(3):
        draft = Draft(
            sender=Address("news@mail.example.org"), subject=f"Receipt {i}",
            body=f"Receipt number {i}",
            envelopes=(Envelope(to=(Address(f"r{i}@example.net"),)),),
        )
        originals.append(service.send(service.prepare(draft)).attempt_id)
    store = JobStore(history)
    job_id = store.create_resend("sbx", originals, concurrency=2)
    run(service, job_id)
    job_rows = store.rows(job_id)
    assert [r.state for r in job_rows] == [RowState.SENT] * 3
    for r, original in zip(job_rows, originals, strict=True):
        entry = history.get(r.attempt_id or -1)
        assert entry.resend_of == original and entry.job_id == job_id
        assert entry.subject == history.get(original).subject
        assert entry.tokens == (r.token,) != history.get(original).tokens
    assert len(sandbox.messages()) == 6


def test_delivery_events_and_the_support_summary_of_an_entry(
    sandbox: EmbeddedSandbox, service: SendService
) -> None:
    draft = Draft(
        sender=Address("news@mail.example.org"),
        subject="Invoice [%NO%] for [%NAME%]",
        body="See invoice [%NO%].",
        envelopes=(Envelope(to=(Address("asha@example.net", "Asha"),),
                            attributes={"NO": "INV-9", "NAME": "Asha"}),),
    )
    entry = service.history.get(service.send(service.prepare(draft)).attempt_id)
    lookup = fetch_events(service.client(), entry)
    assert lookup.ok
    assert [e.name for e in lookup.events] == ["processed", "delivered"]
    assert lookup.events[-1].raw_name == "sent"  # the service's word, normalised
    assert all(e.token == entry.tokens[0] and e.email == "asha@example.net"
               for e in lookup.events)
    assert lookup.events[0].message_id == entry.message_id
    summary = support_summary(entry, lookup)
    for expected in (
        "To: asha@example.net",
        "Subject: Invoice INV-9 for Asha",
        f"Message id: {entry.message_id}",
        f"Correlation token: {entry.tokens[0]}",
        "Outcome: sent (HTTP 200)",
        "Last event: ",
        "delivered  asha@example.net",
    ):
        assert expected in summary

    # A bounce shows with its reason; a failed lookup says why.
    bounce = Draft(sender=draft.sender, subject="x", body="x",
                   envelopes=(Envelope(to=(Address("nobody@bounce.invalid"),)),))
    bounced = service.history.get(service.send(service.prepare(bounce)).attempt_id)
    assert fetch_events(service.client(), bounced).last is not None
    assert fetch_events(service.client(), bounced).events[-1].name == "bounced"
    wrong = NetcoreClient(sandbox.base_url, "wrong-key", retry=FAST_RETRY)
    failed = fetch_events(wrong, entry)
    wrong.close()
    assert not failed.ok and "key was refused" in failed.message
