"""Suppressions (v6 and v5.1), and the delivery events and statistics synthesised from sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from netcore_desktop.sandbox import EmbeddedSandbox

from .conftest import fields, payload, v5, v6


def _send_to(api: httpx.Client, sandbox: EmbeddedSandbox, token: str, *emails: str) -> str:
    body = payload(token=token)
    body["personalizations"][0]["to"] = [{"email": e} for e in emails]
    response = api.post("/v6/mail/send", json=body, headers=v6(sandbox))
    assert response.status_code == 200, response.text
    message_id: str = response.json()["data"]["message_id"]
    return message_id


def _events(api: httpx.Client, sandbox: EmbeddedSandbox, **params: object) -> httpx.Response:
    return api.get("/v5.1/events", params=params, headers=v5(sandbox))  # type: ignore[arg-type]


def test_suppression_emails_add_list_remove(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    added = api.post(
        "/v6/suppression/emails",
        json={"emails": ["One@Example.net", "two@example.net"]},
        headers=v6(sandbox),
    )
    assert added.status_code == 200
    assert added.json()["data"]["added"] == ["one@example.net", "two@example.net"]
    listed = api.get("/v6/suppression/emails", headers=v6(sandbox)).json()["data"]
    assert [e["email"] for e in listed["emails"]] == ["one@example.net", "two@example.net"]
    removed = api.request(
        "DELETE", "/v6/suppression/emails", json={"emails": ["one@example.net"]},
        headers=v6(sandbox),
    )
    assert removed.json()["data"]["removed"] == ["one@example.net"]
    listed = api.get("/v6/suppression/emails", headers=v6(sandbox)).json()["data"]
    assert listed["total"] == 1


def test_suppression_domains(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    response = api.post(
        "/v6/suppression/domains", json={"domains": ["blocked.example"]}, headers=v6(sandbox)
    )
    assert response.status_code == 200
    listed = api.get("/v6/suppression/domains", headers=v6(sandbox)).json()["data"]
    assert listed["domains"][0]["domain"] == "blocked.example"
    bad = api.post("/v6/suppression/domains", json={"domains": ["not a domain"]},
                   headers=v6(sandbox))
    assert bad.status_code == 400 and fields(bad) == ["domains[0]"]


def test_suppression_refuses_over_1000_and_bad_addresses(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    many = [f"user{i}@example.net" for i in range(1001)]
    response = api.post("/v6/suppression/emails", json={"emails": many}, headers=v6(sandbox))
    assert response.status_code == 400 and fields(response) == ["emails"]
    ok = api.post("/v6/suppression/emails", json={"emails": many[:1000]}, headers=v6(sandbox))
    assert ok.status_code == 200 and len(ok.json()["data"]["added"]) == 1000
    bad = api.post("/v6/suppression/emails", json={"emails": ["a@example.net", "nope"]},
                   headers=v6(sandbox))
    assert bad.status_code == 400 and fields(bad) == ["emails[1]"]
    assert api.get("/v6/suppression/emails").status_code == 401
    assert api.get("/v6/suppression/others", headers=v6(sandbox)).status_code == 404


def test_v51_suppression_takes_a_comma_list(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    added = api.post(
        "/v5.1/suppression", json={"email": "a@example.net,b@example.net"}, headers=v5(sandbox)
    )
    assert added.status_code == 200
    assert added.json()["data"]["added"] == ["a@example.net", "b@example.net"]
    removed = api.request(
        "DELETE", "/v5.1/suppression", json={"email": "a@example.net"}, headers=v5(sandbox)
    )
    assert removed.json()["data"]["removed"] == ["a@example.net"]
    assert api.get("/v5.1/suppression", headers=v5(sandbox)).status_code == 405


def test_events_processed_then_sent(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    message_id = _send_to(api, sandbox, "nd-ok", "asha@example.net")
    answer = _events(api, sandbox, xapiheader="nd-ok").json()
    assert answer["status"] == "success" and answer["total"] == 2
    processed, sent = answer["data"]
    assert processed["EVENT"] == "processed" and sent["EVENT"] == "sent"
    for event in (processed, sent):
        assert event["TRANSID"] == message_id
        assert event["EMAIL"] == "asha@example.net"
        assert event["X-APIHEADER"] == "nd-ok"
        assert event["FROMADDRESS"] == "billing@mail.example.org"
        assert event["TAGS"] == "invoice"
        assert isinstance(event["TIMESTAMP"], int)
        assert "RESPONSE" in event
    assert sent["RESPONSE"].startswith("250")


def test_suppressed_address_is_dropped_as_of_send_time(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    sandbox.suppress("gone@example.net")
    _send_to(api, sandbox, "nd-drop", "gone@example.net", "here@example.net")
    # Lifting the suppression afterwards does not change what happened.
    api.request("DELETE", "/v6/suppression/emails", json={"emails": ["gone@example.net"]},
                headers=v6(sandbox))
    events = _events(api, sandbox, xapiheader="nd-drop").json()["data"]
    outcome = {e["EMAIL"]: e["EVENT"] for e in events if e["EVENT"] != "processed"}
    assert outcome == {"gone@example.net": "dropped", "here@example.net": "sent"}


def test_suppressed_domain_is_dropped(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    api.post("/v6/suppression/domains", json={"domains": ["blocked.example"]},
             headers=v6(sandbox))
    _send_to(api, sandbox, "nd-dom", "x@blocked.example")
    events = _events(api, sandbox, xapiheader="nd-dom", events="dropped").json()["data"]
    assert [e["EMAIL"] for e in events] == ["x@blocked.example"]


def test_bounce_invalid_addresses_bounce(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    _send_to(api, sandbox, "nd-b", "nobody@bounce.invalid")
    (bounce,) = _events(api, sandbox, xapiheader="nd-b", events="bounce").json()["data"]
    assert bounce["EVENT"] == "bounced"
    assert bounce["BOUNCE_TYPE"] == "HARDBOUNCE"
    assert "nobody@bounce.invalid" in bounce["BOUNCE_REASON"]


def test_cc_and_bcc_carry_their_own_tokens(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    body = payload(token="nd-to")
    env = body["personalizations"][0]
    env["cc"] = [{"email": "cc@example.net"}]
    env["token_cc"] = "nd-cc"
    body["bcc"] = [{"email": "audit@example.net"}]
    assert api.post("/v6/mail/send", json=body, headers=v6(sandbox)).status_code == 200
    events = _events(api, sandbox, events="sent").json()["data"]
    assert {(e["EMAIL"], e["X-APIHEADER"]) for e in events} == {
        ("asha@example.net", "nd-to"),
        ("cc@example.net", "nd-cc"),
        ("audit@example.net", "nd-to"),
    }
    assert len(sandbox.messages(token="nd-cc")) == 1


def test_events_filters_sort_and_paging(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    for i in range(3):
        _send_to(api, sandbox, f"nd-{i}", f"user{i}@example.net")
    everything = _events(api, sandbox).json()
    assert everything["total"] == 6
    by_email = _events(api, sandbox, email="user1@example.net").json()["data"]
    assert {e["X-APIHEADER"] for e in by_email} == {"nd-1"}
    page = _events(api, sandbox, events="sent", limit=2, offset=1).json()
    assert page["total"] == 3
    assert [e["EMAIL"] for e in page["data"]] == ["user1@example.net", "user2@example.net"]
    newest = _events(api, sandbox, sort="desc", limit=1).json()["data"][0]
    assert newest["EMAIL"] == "user2@example.net" and newest["EVENT"] == "sent"
    today = datetime.now(UTC).date()
    assert _events(api, sandbox, startdate=str(today), enddate=str(today)).json()["total"] == 6
    tomorrow = today + timedelta(days=1)
    assert _events(api, sandbox, startdate=str(tomorrow)).json()["total"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"startdate": "31/12/2024"}, "startdate"),
        ({"startdate": "2025-01-02", "enddate": "2025-01-01"}, "enddate"),
        ({"limit": "0"}, "limit"),
        ({"sort": "sideways"}, "sort"),
    ],
)
def test_bad_event_queries_are_named_400s(
    sandbox: EmbeddedSandbox, api: httpx.Client, params: dict[str, str], field: str
) -> None:
    response = _events(api, sandbox, **params)
    assert response.status_code == 400
    assert fields(response) == [field]


def test_queued_sends_have_no_events_yet(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    sandbox.set_faults(daily_limit=0)
    body = payload(token="nd-later")
    assert api.post("/v6/mail/send", json=body, headers=v6(sandbox)).status_code == 202
    assert _events(api, sandbox, xapiheader="nd-later").json()["data"] == []


def test_v51_stats_count_per_day(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    sandbox.suppress("gone@example.net")
    _send_to(api, sandbox, "nd-1", "a@example.net", "gone@example.net")
    _send_to(api, sandbox, "nd-2", "b@bounce.invalid")
    rows = api.get("/v5.1/stats", headers=v5(sandbox)).json()["data"]
    assert len(rows) == 1
    day = rows[0]
    assert day["day"] == str(datetime.now(UTC).date())
    assert (day["requests"], day["processed"], day["sent"], day["dropped"], day["bounced"]) == (
        2, 3, 1, 1, 1
    )
    bad = api.get("/v5.1/stats", params={"aggregated_by": "hour"}, headers=v5(sandbox))
    assert bad.status_code == 400 and fields(bad) == ["aggregated_by"]


def test_events_from_python_match_the_endpoint(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    _send_to(api, sandbox, "nd-py", "asha@example.net", "x@bounce.invalid")
    over_http = _events(api, sandbox, xapiheader="nd-py").json()["data"]
    assert sandbox.events(xapiheader="nd-py") == over_http
    assert [e["EVENT"] for e in over_http] == ["processed", "sent", "processed", "bounced"]
