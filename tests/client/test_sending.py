"""The one sending path: prepare, record, send, complete, resend, against the sandbox.

Real parts throughout: the sandbox over sockets, the SQLite history in a temporary file, and
the keyring (the real Secret Service under ``bash tests/run.sh``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netcore_desktop.core.checks import FIELD_TEMPLATE_ID, Severity
from netcore_desktop.core.contract import ApiVersion, Region
from netcore_desktop.core.history import History, Outcome
from netcore_desktop.core.message import Address, Envelope, build_payload
from netcore_desktop.core.profiles import Profile, SmtpSecurity, Transport
from netcore_desktop.core.secrets import SecretStore
from netcore_desktop.core.sending import (
    ChecksFailed,
    MissingKeyError,
    SendService,
    prepare_for,
    split_envelopes,
)
from netcore_desktop.sandbox import EmbeddedSandbox

from ._support import FAST_RETRY, make_draft

pytestmark = pytest.mark.keyring


@pytest.fixture
def secrets(keyring_service: str) -> Iterator[SecretStore]:
    store = SecretStore(service=keyring_service)
    yield store
    for name in ("sbx", "smtp", "nokey"):
        store.delete_all(name)


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    with History(tmp_path / "history.sqlite3") as h:
        yield h


def _api_profile(sandbox: EmbeddedSandbox, name: str = "sbx", **changes: object) -> Profile:
    settings: dict[str, object] = {
        "name": name,
        "region": Region.CUSTOM,
        "base_url": sandbox.base_url,
        "sender_email": "billing@mail.example.org",
        "is_sandbox": True,
        "timeout_s": 10.0,
    }
    settings.update(changes)
    return Profile(**settings)  # type: ignore[arg-type]


@pytest.fixture
def service(
    sandbox: EmbeddedSandbox, secrets: SecretStore, history: History
) -> Iterator[SendService]:
    secrets.set_api_key("sbx", sandbox.api_key)
    with SendService(_api_profile(sandbox), secrets, history, retry=FAST_RETRY) as s:
        yield s


# --- prepare ---------------------------------------------------------------------------------


def test_prepare_renders_once_and_gives_fresh_tokens(service: SendService) -> None:
    draft = make_draft()
    prepared = service.prepare(draft)
    new_tokens = prepared.tokens
    assert len(new_tokens) == 1 and new_tokens[0] != draft.envelopes[0].token
    assert new_tokens[0].startswith("nd-")
    assert service.prepare(draft).tokens != new_tokens
    # The payload carries the very HTML the checks and the preview look at.
    assert prepared.payload["content"][0]["value"] == prepared.html
    assert prepared.payload == build_payload(prepared.draft, ApiVersion.V6, prepared.html)
    assert prepared.credits == 1
    assert not prepared.blocking
    assert any(p.severity is Severity.INFO and "1 credit" in p.message for p in prepared.problems)


def test_prepare_needs_no_key_and_no_history(sandbox: EmbeddedSandbox) -> None:
    prepared = prepare_for(_api_profile(sandbox, name="nokey"), make_draft())
    assert prepared.payload["personalizations"][0]["token_to"] == prepared.tokens[0]


def test_more_than_1000_envelopes_are_split_into_requests_of_1000(
    sandbox: EmbeddedSandbox, service: SendService, history: History
) -> None:
    envelopes = tuple(
        Envelope(to=(Address(f"user{i}@example.net"),),
                 attributes={"FIRST_NAME": f"U{i}", "INVOICE_NO": str(i)})
        for i in range(2500)
    )
    prepared = service.prepare(make_draft(envelopes=envelopes))
    sizes = [len(r.payload["personalizations"]) for r in prepared.requests]
    assert sizes == [1000, 1000, 500]
    assert any("3 requests" in p.message for p in prepared.problems)
    outcome = service.send(prepared)
    assert outcome.ok and len(outcome.attempt_ids) == 3
    assert len(sandbox.messages()) == 3
    entries = [history.get(i) for i in outcome.attempt_ids]
    assert [len(e.tokens) for e in entries] == [1000, 1000, 500]
    assert all(e.outcome is Outcome.SENT for e in entries)
    small = make_draft()
    assert split_envelopes(small) == [small]


# --- send --------------------------------------------------------------------------------------


def test_a_send_lands_in_the_history_with_the_service_answer(
    sandbox: EmbeddedSandbox, service: SendService, history: History
) -> None:
    prepared = service.prepare(make_draft())
    outcome = service.send(prepared)
    assert outcome.ok and outcome.outcome is Outcome.SENT
    result = outcome.result
    entry = history.get(outcome.attempt_id)
    assert entry.outcome is Outcome.SENT
    assert entry.status_code == 200
    assert entry.message_id == result.message_id
    assert entry.tokens == prepared.tokens
    assert entry.profile == "sbx" and entry.transport == "api" and entry.api_version == "v6"
    assert entry.endpoint == sandbox.base_url + "/v6/mail/send"
    assert entry.payload == prepared.payload
    assert entry.draft.body == prepared.draft.body  # the Markdown source, not the HTML
    stored = sandbox.messages(token=prepared.tokens[0])
    assert [m["message_id"] for m in stored] == [result.message_id]
    assert sandbox.api_key not in entry.response_body + entry.payload_json + entry.draft_json


def test_the_attempt_is_recorded_before_the_request_goes_out(
    sandbox: EmbeddedSandbox, service: SendService, history: History
) -> None:
    sandbox.set_faults(latency_ms=700)
    prepared = service.prepare(make_draft())
    seen: list[Outcome] = []

    def watch() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = history.search(token=prepared.tokens[0])
            if found:
                seen.append(found[0].outcome)
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    outcome = service.send(prepared)
    watcher.join()
    assert seen == [Outcome.PENDING]
    assert history.get(outcome.attempt_id).outcome is Outcome.SENT


def test_a_refusal_is_recorded_with_its_field_errors(
    sandbox: EmbeddedSandbox, service: SendService, history: History
) -> None:
    sandbox.force_status(400, 1)
    outcome = service.send(service.prepare(make_draft()))
    assert outcome.outcome is Outcome.REFUSED and not outcome.ok
    entry = history.get(outcome.attempt_id)
    assert entry.outcome is Outcome.REFUSED and entry.status_code == 400
    assert "Forced status 400" in entry.error
    assert entry.meaning == outcome.result.meaning


def test_no_key_stored_is_a_clear_error_and_records_nothing(
    sandbox: EmbeddedSandbox, secrets: SecretStore, history: History
) -> None:
    service = SendService(_api_profile(sandbox, name="nokey"), secrets, history)
    prepared = service.prepare(make_draft())
    with pytest.raises(MissingKeyError) as info:
        service.send(prepared)
    assert info.value.code == "missing_key"
    assert "netcore-desktop profile set-key nokey" in str(info.value)
    assert history.count() == 0
    assert sandbox.messages() == []


def test_blocking_problems_stop_the_send_before_the_history(
    sandbox: EmbeddedSandbox, service: SendService, history: History
) -> None:
    prepared = service.prepare(make_draft(envelopes=(Envelope(to=(Address("asha@@x"),)),)))
    assert prepared.blocking
    with pytest.raises(ChecksFailed) as info:
        service.send(prepared)
    assert info.value.code == "checks"
    assert "asha@@x" in str(info.value)
    assert history.count() == 0 and sandbox.messages() == []


def test_cancel_before_sending_records_cancelled_attempts(
    sandbox: EmbeddedSandbox, service: SendService, history: History
) -> None:
    cancel = threading.Event()
    cancel.set()
    outcome = service.send(service.prepare(make_draft()), cancel=cancel)
    assert outcome.outcome is Outcome.CANCELLED
    assert history.get(outcome.attempt_id).outcome is Outcome.CANCELLED
    assert sandbox.messages() == []


def test_a_202_is_queued_in_the_history_and_not_resent(
    sandbox: EmbeddedSandbox, service: SendService, history: History
) -> None:
    sandbox.set_faults(daily_limit=0)
    outcome = service.send(service.prepare(make_draft()))
    assert outcome.ok and outcome.outcome is Outcome.QUEUED
    assert history.get(outcome.attempt_id).outcome is Outcome.QUEUED
    assert len(sandbox.messages()) == 1


# --- resend --------------------------------------------------------------------------------------


def test_resend_to_a_corrected_address_is_a_new_linked_attempt(
    sandbox: EmbeddedSandbox, service: SendService, history: History
) -> None:
    typo = make_draft(envelopes=(Envelope(
        to=(Address("asha@exmaple.net", "Asha Rao"),),
        attributes={"FIRST_NAME": "Asha", "INVOICE_NO": "INV-1042"},
    ),))
    first = service.send(service.prepare(typo))
    second = service.resend(first.attempt_id, to="asha@example.net")
    assert second.ok and second.attempt_id != first.attempt_id
    entry = history.get(second.attempt_id)
    assert entry.resend_of == first.attempt_id
    assert entry.recipients == ("asha@example.net",)
    assert entry.tokens != history.get(first.attempt_id).tokens
    assert entry.draft.envelopes[0].to == (Address("asha@example.net", "Asha Rao"),)
    assert entry.draft.subject == typo.subject and entry.draft.body == typo.body
    stored = sandbox.messages(token=entry.tokens[0])
    assert stored[0]["request"]["personalizations"][0]["to"] == [
        {"email": "asha@example.net", "name": "Asha Rao"}
    ]
    assert [e.id for e in history.resends_of(first.attempt_id)] == [second.attempt_id]


def test_resend_of_an_unknown_attempt_says_so(service: SendService) -> None:
    with pytest.raises(Exception, match="no attempt #4242"):
        service.resend(4242)


# --- SMTP ----------------------------------------------------------------------------------------


def test_an_smtp_profile_sends_each_envelope_as_its_own_attempt(
    sandbox: EmbeddedSandbox, secrets: SecretStore, history: History
) -> None:
    profile = Profile(
        name="smtp", transport=Transport.SMTP, smtp_host="127.0.0.1",
        smtp_port=sandbox.smtp_port, smtp_user=sandbox.smtp_user,
        smtp_security=SmtpSecurity.NONE, sender_email="billing@mail.example.org",
        is_sandbox=True,
    )
    secrets.set_smtp_password("smtp", sandbox.smtp_password)
    draft = make_draft(envelopes=(
        Envelope(to=(Address("a@example.net"),),
                 attributes={"FIRST_NAME": "A", "INVOICE_NO": "1"}),
        Envelope(to=(Address("b@example.net"),),
                 attributes={"FIRST_NAME": "B", "INVOICE_NO": "2"}),
    ))
    with SendService(profile, secrets, history) as service:
        prepared = service.prepare(draft)
        outcome = service.send(prepared)
    assert outcome.ok and len(outcome.attempt_ids) == 2
    for attempt_id, token in zip(outcome.attempt_ids, prepared.tokens, strict=True):
        entry = history.get(attempt_id)
        assert entry.transport == "smtp"
        assert entry.endpoint == f"smtp://127.0.0.1:{sandbox.smtp_port}"
        assert entry.tokens == (token,)
        assert entry.outcome is Outcome.SENT and entry.message_id.startswith("<")
        (stored,) = sandbox.messages(token=token)
        assert stored["transport"] == "smtp"
        assert sandbox.smtp_password not in entry.response_body + entry.payload_json


def test_smtp_cannot_send_stored_templates(
    sandbox: EmbeddedSandbox, secrets: SecretStore, history: History
) -> None:
    profile = Profile(name="smtp", transport=Transport.SMTP, smtp_host="127.0.0.1",
                      smtp_user="sandbox", smtp_security=SmtpSecurity.NONE,
                      sender_email="billing@mail.example.org")
    prepared = SendService(profile, secrets, history).prepare(make_draft(template_id=7))
    assert prepared.blocking
    assert any(p.field == FIELD_TEMPLATE_ID and "SMTP" in p.message for p in prepared.problems)


# --- reliability ----------------------------------------------------------------------------------


def test_200_sends_with_30_percent_failures_all_end_in_a_final_state(
    sandbox_factory: Callable[..., EmbeddedSandbox],
    secrets: SecretStore,
    history: History,
) -> None:
    sandbox = sandbox_factory(fail_rate=0.3, seed=1234)
    secrets.set_api_key("sbx", sandbox.api_key)
    outcomes: list[Outcome] = []
    with SendService(_api_profile(sandbox), secrets, history, retry=FAST_RETRY) as service:
        draft = make_draft()
        for _ in range(200):
            outcomes.extend(r.result.outcome for r in service.send(service.prepare(draft)).requests)
    entries = history.search(limit=1000)
    assert len(entries) == 200
    assert all(e.outcome.is_final for e in entries), Counter(e.outcome for e in entries)
    # With four tries at a 30 % failure rate nearly every send goes through.
    assert Counter(outcomes)[Outcome.SENT] >= 190
    stored = sandbox.messages()
    counts = Counter(token for m in stored for token in m["tokens"])
    assert counts and max(counts.values()) == 1, "a correlation token reached the service twice"
    by_token = {token: m["message_id"] for m in stored for token in m["tokens"]}
    for e in entries:
        if e.outcome is Outcome.SENT:
            assert by_token[e.tokens[0]] == e.message_id
        else:
            assert e.outcome is Outcome.FAILED and e.attempts == 4
            assert e.tokens[0] not in by_token
