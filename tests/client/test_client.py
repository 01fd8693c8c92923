"""The API client against the real sandbox over real sockets: every answer and every retry rule.

Each test checks what a person would see (the outcome, the sentence, the field errors) and
what the service really received (the sandbox's own record), per ``shared/netcore-api.md`` §4.
"""

from __future__ import annotations

import base64
import json
import os
import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from netcore_desktop.core.client import (
    KEY_MASK,
    ClientConfigError,
    NetcoreClient,
    RetryPolicy,
    parse_errors,
)
from netcore_desktop.core.contract import GZIP_THRESHOLD_BYTES, ApiVersion
from netcore_desktop.core.history import Outcome
from netcore_desktop.core.message import (
    Address,
    Attachment,
    Envelope,
    build_payload,
    payload_bytes,
)
from netcore_desktop.sandbox import EmbeddedSandbox
from tests._ports import free_port

from ._support import FAST_RETRY, make_draft, raw_body

# --- the status table -------------------------------------------------------------------------


def test_200_is_sent_with_the_message_id_the_service_stored(
    sandbox: EmbeddedSandbox, client: NetcoreClient
) -> None:
    draft = make_draft()
    payload = build_payload(draft)
    result = client.send(payload)
    assert result.ok and result.status_code == 200
    assert result.outcome is Outcome.SENT
    assert result.meaning.startswith("Sent")
    assert result.attempts == 1
    assert result.message_id and len(result.message_id) == 32
    stored = sandbox.messages(token=draft.envelopes[0].token)
    assert [m["message_id"] for m in stored] == [result.message_id]
    assert stored[0]["request"] == payload
    # The record holds the exact bytes that went out.
    assert result.request is not None
    assert result.request.body_bytes == payload_bytes(payload)
    assert raw_body(sandbox, result.message_id) == result.request.body_bytes
    assert result.response_json["status"] == "success"


def test_202_is_queued_not_an_error_and_never_retried(
    sandbox_factory: object,
) -> None:
    sandbox = sandbox_factory(daily_limit=0)  # type: ignore[operator]
    draft = make_draft()
    with NetcoreClient(sandbox.base_url, sandbox.api_key, retry=FAST_RETRY) as client:
        result = client.send(build_payload(draft))
    assert result.status_code == 202
    assert result.ok
    assert result.outcome is Outcome.QUEUED
    assert "queued" in result.meaning.lower() and "daily limit" in result.meaning
    assert result.errors == ()
    assert result.attempts == 1
    assert result.message_id
    stored = sandbox.messages(token=draft.envelopes[0].token)
    assert len(stored) == 1 and stored[0]["status"] == "queued"


def test_400_names_each_bad_field(sandbox: EmbeddedSandbox, client: NetcoreClient) -> None:
    draft = make_draft(envelopes=())
    payload = build_payload(draft)
    payload["personalizations"] = [{"to": [{"email": "asha@@example"}]}]
    payload["subject"] = ""
    result = client.send(payload)
    assert result.status_code == 400
    assert not result.ok and result.outcome is Outcome.REFUSED
    assert result.attempts == 1
    fields = result.field_errors()
    assert "personalizations[0].to[0].email" in fields
    assert "subject" in fields
    assert "2 problems" in result.meaning
    assert sandbox.messages() == []


def test_401_says_check_the_key_and_the_region(sandbox: EmbeddedSandbox) -> None:
    with NetcoreClient(sandbox.base_url, "not-the-key", retry=FAST_RETRY) as client:
        result = client.send(build_payload(make_draft()))
    assert result.status_code == 401
    assert result.outcome is Outcome.REFUSED
    assert "region" in result.meaning and "EU" in result.meaning
    assert result.attempts == 1
    assert result.errors and result.errors[0].message


def test_403_says_forbidden_and_which_reason(
    sandbox: EmbeddedSandbox, client: NetcoreClient
) -> None:
    sandbox.force_status(403, 1)
    result = client.send(build_payload(make_draft()))
    assert result.status_code == 403
    assert result.outcome is Outcome.REFUSED
    assert result.meaning.startswith("Forbidden")
    assert result.attempts == 1


def test_403_bodies_from_the_real_service_tell_scope_from_ip() -> None:
    # Stand-ins for Netcore's real servers: the sandbox words its 403 one way only.
    bodies = {
        "scope": {"status": "error", "error": "The key does not have the scope mail.send"},
        "ip": {"message": "Forbidden", "errorcode": "107", "errormessage": "denied"},
    }
    for kind, body in bodies.items():
        transport = httpx.MockTransport(lambda request, b=body: httpx.Response(403, json=b))
        with NetcoreClient(
            "https://emailapi.netcorecloud.net", "k" * 32, transport=transport
        ) as client:
            result = client.send(build_payload(make_draft()))
        if kind == "scope":
            assert "scope" in result.meaning and "allow-list" not in result.meaning
            assert result.errors[0].message == "The key does not have the scope mail.send"
        else:
            assert "allow-list" in result.meaning
            assert "IP address is not allowed" in result.errors[0].message


def test_405_says_app_bug_or_wrong_base_url(
    sandbox: EmbeddedSandbox, client: NetcoreClient
) -> None:
    sandbox.force_status(405, 1)
    result = client.send(build_payload(make_draft()))
    assert result.status_code == 405
    assert result.outcome is Outcome.REFUSED
    assert "base URL" in result.meaning
    assert result.attempts == 1


def test_the_three_error_shapes_are_parsed() -> None:
    listed = parse_errors(
        {"data": [], "status": "error", "error": [
            {"field": "from.email", "message": "Invalid", "description": "domain not verified"}
        ]}
    )
    assert [(e.field, e.message) for e in listed] == [
        ("from.email", "Invalid: domain not verified")
    ]
    plain = parse_errors({"status": "error", "error": "Bad subject", "info": "too long"})
    assert [(e.field, e.message) for e in plain] == [("", "Bad subject: too long")]
    for code, words in (("104", "missing"), ("105", "invalid"), ("106", "limit"),
                        ("107", "IP")):
        legacy = parse_errors({"message": "x", "errorcode": code, "errormessage": "m"})
        assert words in legacy[0].message
    assert parse_errors({"unexpected": True}) == ()
    assert parse_errors("<html>Bad gateway</html>") == ()


def test_an_unrecognised_error_body_is_kept_raw() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(418, text="<h1>teapot</h1>"))
    with NetcoreClient("https://emailapi.netcorecloud.net", "k" * 32,
                       transport=transport) as client:
        result = client.send(build_payload(make_draft()))
    assert result.outcome is Outcome.REFUSED
    assert result.errors == ()
    assert result.response_body == "<h1>teapot</h1>"
    assert result.response_json is None


# --- retries -------------------------------------------------------------------------------


def test_500_twice_is_retried_and_sent_exactly_once(
    sandbox: EmbeddedSandbox, client: NetcoreClient
) -> None:
    draft = make_draft()
    sandbox.force_status(500, 2)
    result = client.send(build_payload(draft))
    assert result.ok and result.outcome is Outcome.SENT
    assert result.attempts == 3
    assert len(sandbox.messages(token=draft.envelopes[0].token)) == 1


def test_500_on_every_try_fails_after_four_tries(
    sandbox: EmbeddedSandbox, client: NetcoreClient
) -> None:
    sandbox.force_status(500, 10)
    result = client.send(build_payload(make_draft()))
    assert result.outcome is Outcome.FAILED
    assert result.status_code == 500
    assert result.attempts == 4
    assert "every try" in result.meaning
    assert sandbox.stats()["responses"]["500"] == 4
    assert sandbox.messages() == []


def test_a_2xx_page_that_is_not_netcore_is_not_called_sent() -> None:
    # A stand-in for a captive portal or a proxy login page between the app and Netcore.
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, text="<html><body>Please log in</body></html>")
    )
    with NetcoreClient("https://emailapi.netcorecloud.net", "k" * 32,
                       transport=transport) as client:
        result = client.send(build_payload(make_draft()))
    assert not result.ok and result.outcome is Outcome.UNKNOWN
    assert "not Netcore's" in result.meaning and result.attempts == 1


def test_the_retry_limits_of_the_contract_cannot_be_loosened() -> None:
    with pytest.raises(ValueError, match="max_tries"):
        RetryPolicy(max_tries=5)
    with pytest.raises(ValueError, match="30"):
        RetryPolicy(max_delay_s=60)
    assert RetryPolicy(max_tries=1).max_tries == 1


def test_backoff_has_jitter_and_a_ceiling() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=30.0)
    rng = random.Random(7)
    waits = [policy.backoff(n, rng) for n in range(1, 8) for _ in range(50)]
    assert max(waits) <= 30.0
    assert len({round(w, 3) for w in waits}) > 100  # not the same wait for everyone
    assert all(0 <= policy.backoff(1, rng) <= 1.0 for _ in range(100))


def test_503_retry_after_is_honoured(sandbox: EmbeddedSandbox) -> None:
    # The sandbox's forced 503 carries "Retry-After: 1"; the backoff alone would be ~0.
    policy = RetryPolicy(base_delay_s=0.001, max_delay_s=30.0)
    with NetcoreClient(sandbox.base_url, sandbox.api_key, retry=policy) as client:
        sandbox.force_status(503, 1)
        started = time.monotonic()
        result = client.send(build_payload(make_draft()))
        waited = time.monotonic() - started
    assert result.outcome is Outcome.SENT and result.attempts == 2
    assert waited >= 0.95


def test_connection_refused_is_retried_then_fails_with_advice() -> None:
    port = free_port()
    with NetcoreClient(f"http://127.0.0.1:{port}", "k" * 32, retry=FAST_RETRY) as client:
        result = client.send(build_payload(make_draft()))
    assert result.outcome is Outcome.FAILED
    assert result.status_code is None
    assert result.attempts == 4
    assert "Could not connect" in result.meaning and "Nothing was sent" in result.meaning


def test_connection_refused_then_the_service_comes_up(
    sandbox_factory: object,
) -> None:
    port = free_port()
    started: list[EmbeddedSandbox] = []

    def come_up() -> None:
        time.sleep(0.3)
        started.append(sandbox_factory(port=port))  # type: ignore[operator]

    class LongestWaits(random.Random):
        """Jitter that always draws the longest wait, so the retries span the start-up."""

        def uniform(self, a: float, b: float) -> float:
            return b

    policy = RetryPolicy(base_delay_s=0.4, max_delay_s=0.8)  # waits 0.4, 0.8, 0.8 s
    thread = threading.Thread(target=come_up)
    thread.start()
    draft = make_draft()
    with NetcoreClient(f"http://127.0.0.1:{port}", "sandbox-key", retry=policy,
                       rng=LongestWaits()) as client:
        result = client.send(build_payload(draft))
    thread.join()
    assert result.ok and result.attempts >= 2, result.meaning
    assert len(started[0].messages(token=draft.envelopes[0].token)) == 1


def test_read_timeout_is_unknown_and_not_retried(sandbox: EmbeddedSandbox) -> None:
    draft = make_draft()
    sandbox.set_faults(latency_ms=800)
    timeout = httpx.Timeout(5.0, read=0.3)
    with NetcoreClient(sandbox.base_url, sandbox.api_key, timeout=timeout,
                       retry=FAST_RETRY) as client:
        result = client.send(build_payload(draft))
    assert result.outcome is Outcome.UNKNOWN
    assert result.attempts == 1
    assert "may have been sent" in result.meaning
    assert "history" in result.meaning


def test_read_timeout_is_retried_when_the_caller_allows_it(sandbox: EmbeddedSandbox) -> None:
    draft = make_draft()
    sandbox.set_faults(latency_ms=800)
    timer = threading.Timer(0.5, lambda: sandbox.set_faults(latency_ms=0))
    timer.start()
    timeout = httpx.Timeout(5.0, read=0.3)
    policy = RetryPolicy(base_delay_s=0.2, max_delay_s=0.3)
    try:
        with NetcoreClient(sandbox.base_url, sandbox.api_key, timeout=timeout,
                           retry=policy) as client:
            result = client.send(build_payload(draft), allow_timeout_retry=True)
    finally:
        timer.cancel()
    assert result.ok and result.outcome is Outcome.SENT
    assert result.attempts >= 2


def test_a_dropped_connection_after_the_request_is_unknown(
    sandbox: EmbeddedSandbox, client: NetcoreClient
) -> None:
    sandbox.set_faults(drop_rate=1.0)
    result = client.send(build_payload(make_draft()))
    assert result.outcome is Outcome.UNKNOWN
    assert result.attempts == 1
    assert "may have been sent" in result.meaning


def test_cancel_stops_between_tries(sandbox: EmbeddedSandbox) -> None:
    sandbox.force_status(500, 10)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    policy = RetryPolicy(base_delay_s=20.0, max_delay_s=30.0)
    with NetcoreClient(sandbox.base_url, sandbox.api_key, retry=policy,
                       rng=random.Random(1)) as client:
        started = time.monotonic()
        result = client.send(build_payload(make_draft()), cancel=cancel)
    assert time.monotonic() - started < 5
    assert result.outcome is Outcome.CANCELLED
    assert result.attempts == 1
    assert sandbox.messages() == []


# --- the request itself ------------------------------------------------------------------------


def test_large_v6_bodies_travel_gzipped_and_are_accepted(
    sandbox: EmbeddedSandbox, client: NetcoreClient
) -> None:
    data = os.urandom(80 * 1024)
    draft = make_draft(attachments=(Attachment("statement.pdf", data),))
    payload = build_payload(draft)
    assert len(payload_bytes(payload)) > GZIP_THRESHOLD_BYTES
    result = client.send(payload)
    assert result.ok, result.summary()
    assert result.request is not None and result.request.compressed
    assert result.request.header("Content-Encoding") == "gzip"
    stored = sandbox.messages(token=draft.envelopes[0].token)[0]
    assert stored["headers"].get("content-encoding") == "gzip"
    assert base64.b64decode(stored["request"]["attachments"][0]["content"]) == data
    assert raw_body(sandbox, stored["message_id"]) == payload_bytes(payload)


def test_small_bodies_are_not_gzipped(client: NetcoreClient) -> None:
    result = client.send(build_payload(make_draft()))
    assert result.request is not None and not result.request.compressed
    assert result.request.header("Content-Encoding") is None


def test_v51_sends_the_api_key_header_and_never_gzips(sandbox: EmbeddedSandbox) -> None:
    data = os.urandom(80 * 1024)
    draft = make_draft(attachments=(Attachment("big.bin", data),))
    with NetcoreClient(sandbox.base_url, sandbox.api_key, api_version=ApiVersion.V5_1,
                       retry=FAST_RETRY) as client:
        result = client.send(build_payload(draft, ApiVersion.V5_1))
    assert result.ok, result.summary()
    assert result.request is not None
    assert result.request.url.endswith("/v5.1/mail/send")
    assert result.request.header("api_key") == KEY_MASK
    assert result.request.header("Authorization") is None
    assert not result.request.compressed
    stored = sandbox.messages(token=draft.envelopes[0].token)[0]
    assert stored["api_version"] == "v5.1"


def test_the_key_is_masked_everywhere_in_the_result(client: NetcoreClient) -> None:
    result = client.send(build_payload(make_draft()))
    assert result.request is not None
    assert result.request.header("Authorization") == f"Bearer {KEY_MASK}"
    assert "sandbox-key" not in repr(result)


def test_headers_name_the_app_and_json(client: NetcoreClient) -> None:
    from netcore_desktop import __version__

    result = client.send(build_payload(make_draft()))
    assert result.request is not None
    assert result.request.header("User-Agent") == f"netcore-desktop/{__version__}"
    assert result.request.header("Content-Type") == "application/json"


def test_tls_verification_cannot_be_switched_off(tmp_path: object) -> None:
    with pytest.raises(ClientConfigError, match="cannot be turned off"):
        NetcoreClient("https://emailapi.netcorecloud.net", "k" * 32, verify=False)
    with pytest.raises(ClientConfigError, match="CA bundle"):
        NetcoreClient("https://emailapi.netcorecloud.net", "k" * 32,
                      verify="/nonexistent/ca.pem")


def test_a_ca_bundle_in_the_home_folder_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The profile check accepts "~/ca.pem"; the client must read the same file.
    import trustme

    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("HOME", str(tmp_path))
    client = NetcoreClient("https://emailapi.netcorecloud.net", "k" * 32, verify="~/ca.pem")
    client.close()
    with pytest.raises(ClientConfigError, match="CA bundle"):
        NetcoreClient("https://emailapi.netcorecloud.net", "k" * 32, verify="~/other.pem")


def test_bad_base_urls_and_keys_are_refused_up_front() -> None:
    with pytest.raises(ClientConfigError, match="base URL"):
        NetcoreClient("emailapi.netcorecloud.net", "k" * 32)
    with pytest.raises(ClientConfigError, match="paste it again") as info:
        NetcoreClient("https://emailapi.netcorecloud.net", "secret-key\n")
    assert "secret-key" not in str(info.value)


def test_an_explicit_proxy_is_used(sandbox: EmbeddedSandbox) -> None:
    dead = free_port()
    with NetcoreClient(sandbox.base_url, sandbox.api_key, proxy=f"http://127.0.0.1:{dead}",
                       retry=FAST_RETRY) as client:
        result = client.send(build_payload(make_draft()))
    assert result.outcome is Outcome.FAILED
    assert sandbox.messages() == []


def test_the_environment_proxy_is_used_by_default(
    sandbox: EmbeddedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = free_port()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead}")
    with NetcoreClient(sandbox.base_url, sandbox.api_key, retry=FAST_RETRY) as client:
        result = client.send(build_payload(make_draft()))
    assert result.outcome is Outcome.FAILED
    assert sandbox.messages() == []


# --- templates, events, suppressions ----------------------------------------------------------


def test_templates_round_trip(client: NetcoreClient) -> None:
    html = "<p>Hi [%NAME%], 100% & more</p>"
    created = client.create_template("Welcome", html)
    assert created.status_code == 201 and created.ok
    template_id = created.response_json["data"]["id"]
    got = client.get_template(template_id)
    assert got.ok and got.response_json["data"]["html"] == html
    updated = client.update_template(template_id, name="Welcome 2")
    assert updated.ok
    listed = client.list_templates()
    names = [t["name"] for t in listed.response_json["data"]["templates"]]
    assert "Welcome 2" in names
    missing = client.get_template(999999)
    assert missing.status_code == 404 and missing.outcome is Outcome.REFUSED


def test_events_find_a_send_by_its_token_with_the_api_key_header(
    client: NetcoreClient,
) -> None:
    draft = make_draft()
    assert client.send(build_payload(draft)).ok
    result = client.events(xapiheader=draft.envelopes[0].token)
    assert result.ok
    assert result.request is not None
    assert "/v5.1/events?" in result.request.url
    assert result.request.header("api_key") == KEY_MASK
    text = json.dumps(result.response_json)
    assert "asha@example.net" in text


def test_suppressions_are_sent_in_calls_of_at_most_1000(
    sandbox: EmbeddedSandbox, client: NetcoreClient
) -> None:
    emails = [f"user{i}@example.net" for i in range(1500)]
    results = client.suppression_add(emails)
    assert [r.ok for r in results] == [True, True]
    sizes = [len(json.loads(r.request.body_bytes)["emails"]) for r in results if r.request]
    assert sizes == [1000, 500]
    draft = make_draft(envelopes=(Envelope(
        to=(Address("user7@example.net"),),
        attributes={"FIRST_NAME": "A", "INVOICE_NO": "1"},
    ),))
    assert client.send(build_payload(draft)).ok
    events = sandbox.events(email="user7@example.net")
    assert "dropped" in {e.get("EVENT") for e in events}
    removed = client.suppression_remove(emails[:10])
    assert [r.ok for r in removed] == [True]
    listed = client.suppression_list()
    assert listed.ok and "user0@example.net" not in listed.response_body
