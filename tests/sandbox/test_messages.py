"""The ``/sandbox`` endpoints: stored messages, counters, reset."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import httpx

from netcore_desktop.sandbox import EmbeddedSandbox

from .conftest import fields, payload, v6


def _send(api: httpx.Client, sandbox: EmbeddedSandbox, token: str) -> str:
    response = api.post("/v6/mail/send", json=payload(token=token), headers=v6(sandbox))
    assert response.status_code == 200
    message_id: str = response.json()["data"]["message_id"]
    return message_id


def test_messages_are_listed_newest_first(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    ids = [_send(api, sandbox, f"nd-{i}") for i in range(3)]
    listed = api.get("/sandbox/messages").json()["messages"]
    assert [m["message_id"] for m in listed] == ids[::-1]
    first = listed[-1]
    assert set(first) >= {"message_id", "api_version", "status_code", "received_at", "request"}
    assert first["api_version"] == "v6" and first["status_code"] == 200
    assert first["request"]["personalizations"][0]["token_to"] == "nd-0"
    received = datetime.fromisoformat(first["received_at"])
    assert abs(datetime.now(UTC) - received) < timedelta(minutes=1)


def test_messages_filter_by_token_and_limit(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    wanted = _send(api, sandbox, "nd-wanted")
    for i in range(3):
        _send(api, sandbox, f"nd-other-{i}")
    by_token = api.get("/sandbox/messages", params={"token": "nd-wanted"}).json()["messages"]
    assert [m["message_id"] for m in by_token] == [wanted]
    assert len(api.get("/sandbox/messages", params={"limit": 2}).json()["messages"]) == 2
    assert api.get("/sandbox/messages", params={"limit": "x"}).status_code == 400


def test_one_message_by_id_and_404(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    message_id = _send(api, sandbox, "nd-one")
    found = api.get(f"/sandbox/messages/{message_id}")
    assert found.status_code == 200 and found.json()["message_id"] == message_id
    missing = api.get("/sandbox/messages/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404
    assert fields(missing) == ["message_id"]


def test_delete_empties_the_store(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    _send(api, sandbox, "nd-a")
    _send(api, sandbox, "nd-b")
    assert api.delete("/sandbox/messages").json()["deleted"] == 2
    assert api.get("/sandbox/messages").json()["messages"] == []
    assert sandbox.messages() == []


def test_a_resend_with_the_same_token_is_visible_as_a_duplicate(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    _send(api, sandbox, "nd-dup")
    _send(api, sandbox, "nd-dup")
    _send(api, sandbox, "nd-single")
    assert len(sandbox.messages(token="nd-dup")) == 2
    # The tokens table is indexed, so duplicate checks can be done in SQL too.
    assert sandbox.db_path is not None
    with sqlite3.connect(sandbox.db_path) as conn:
        dups = conn.execute(
            "SELECT token, COUNT(DISTINCT message_id) FROM tokens"
            " GROUP BY token HAVING COUNT(*) > 1"
        ).fetchall()
        query = "EXPLAIN QUERY PLAN SELECT * FROM tokens WHERE token = 'x'"
        plan = " ".join(str(r) for r in conn.execute(query))
    conn.close()
    assert dups == [("nd-dup", 2)]
    assert "tokens_token" in plan


def test_stats_count_answers_per_status(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    _send(api, sandbox, "nd-1")
    api.post("/v6/mail/send", json=payload(), headers={"Authorization": "Bearer nope"})
    api.get("/nowhere")
    stats = api.get("/sandbox/stats").json()
    assert stats["responses"]["200"] == 1
    assert stats["responses"]["401"] == 1
    assert stats["responses"]["404"] == 1
    assert stats["stored_messages"] == 1
    assert stats["sent_today"] == 1


def test_reset_over_http_forgets_everything(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    _send(api, sandbox, "nd-1")
    api.post("/sandbox/faults", json={"fail_rate": 1.0})
    assert api.post("/sandbox/reset").status_code == 200
    assert sandbox.messages() == []
    assert api.get("/sandbox/faults").json()["fail_rate"] == 0.0


def test_info_page_says_where_smtp_listens(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    info = api.get("/").json()
    assert info["smtp_port"] == sandbox.smtp_port
    assert "/v6/mail/send" in info["send_paths"]
