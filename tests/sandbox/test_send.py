"""The send-mail endpoints over real sockets: every answer of contract §4 and §9."""

from __future__ import annotations

import gzip
import json
import re

import httpx
import pytest

from netcore_desktop.core.contract import SANDBOX_MAX_BODY_BYTES
from netcore_desktop.sandbox import EmbeddedSandbox

from .conftest import SandboxFactory, fields, payload, v5, v6

HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.mark.parametrize(
    ("path", "auth"), [("/v6/mail/send", v6), ("/v5.1/mail/send", v5), ("/v5/mail/send", v5)]
)
def test_valid_send_answers_200_with_a_message_id_and_is_stored(
    sandbox: EmbeddedSandbox, api: httpx.Client, path: str, auth: object
) -> None:
    body = payload(token="nd-one")
    response = api.post(path, json=body, headers=auth(sandbox))  # type: ignore[operator]
    assert response.status_code == 200
    answer = response.json()
    assert answer["message"] == "OK" and answer["status"] == "success"
    message_id = answer["data"]["message_id"]
    assert HEX32.match(message_id)
    stored = sandbox.messages(token="nd-one")
    assert [m["message_id"] for m in stored] == [message_id]
    assert stored[0]["request"] == body
    assert stored[0]["api_version"] == path.split("/")[1]
    assert stored[0]["status_code"] == 200 and stored[0]["status"] == "sent"
    # The key is never kept, whichever header carried it.
    assert "authorization" not in stored[0]["headers"] and "api_key" not in stored[0]["headers"]
    assert sandbox.api_key not in json.dumps(stored)


def test_every_send_gets_its_own_message_id(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    ids = {
        api.post("/v6/mail/send", json=payload(), headers=v6(sandbox)).json()["data"]["message_id"]
        for _ in range(5)
    }
    assert len(ids) == 5


def test_body_is_stored_exactly_as_received(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    raw = b'{ "subject" : "Spaced \\u00e9",' + json.dumps(payload(token="nd-raw"))[1:].encode()
    response = api.post(
        "/v6/mail/send", content=raw, headers={**v6(sandbox), "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert sandbox.db_path is not None
    import sqlite3

    with sqlite3.connect(sandbox.db_path) as conn:
        message_id = response.json()["data"]["message_id"]
        (body,) = conn.execute(
            "SELECT body FROM messages WHERE message_id = ?", (message_id,)
        ).fetchone()
    conn.close()
    assert body.encode() == raw


def test_invalid_fields_answer_400_naming_each_field(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    body = payload(subject="")
    body["personalizations"][0]["to"][0]["email"] = "not-an-address"
    response = api.post("/v6/mail/send", json=body, headers=v6(sandbox))
    assert response.status_code == 400
    assert set(fields(response)) == {"subject", "personalizations[0].to[0].email"}
    assert sandbox.messages() == []


def test_v6_only_fields_are_refused_on_v5(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    response = api.post("/v5.1/mail/send", json=payload(priorityflag=1), headers=v5(sandbox))
    assert response.status_code == 400
    assert fields(response) == ["priorityflag"]


@pytest.mark.parametrize(
    ("path", "headers", "field"),
    [
        ("/v6/mail/send", {}, "Authorization"),
        ("/v6/mail/send", {"Authorization": "Bearer wrong"}, "Authorization"),
        ("/v6/mail/send", {"Authorization": "Basic c2FuZGJveC1rZXk="}, "Authorization"),
        # A v5-style header on v6 is not the v6 way of sending the key.
        ("/v6/mail/send", {"api_key": "sandbox-key"}, "Authorization"),
        ("/v5.1/mail/send", {}, "api_key"),
        ("/v5.1/mail/send", {"api_key": "wrong"}, "api_key"),
        ("/v5/mail/send", {"Authorization": "Bearer sandbox-key"}, "api_key"),
    ],
)
def test_missing_or_wrong_key_answers_401(
    sandbox: EmbeddedSandbox, api: httpx.Client, path: str, headers: dict[str, str], field: str
) -> None:
    assert sandbox.api_key == "sandbox-key"
    response = api.post(path, json=payload(), headers=headers)
    assert response.status_code == 401
    assert fields(response) == [field]
    assert "region" in response.json()["message"]
    assert sandbox.messages() == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_on_send_paths_answer_405(
    sandbox: EmbeddedSandbox, api: httpx.Client, method: str
) -> None:
    response = api.request(method, "/v6/mail/send", headers=v6(sandbox))
    assert response.status_code == 405
    assert fields(response) == ["method"]
    assert response.headers["allow"] == "POST"


def test_unknown_path_answers_404_json(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    response = api.post("/v7/mail/send", json=payload(), headers=v6(sandbox))
    assert response.status_code == 404
    assert fields(response) == ["path"]


def test_daily_limit_queues_with_202_and_records_queued(
    sandbox_factory: SandboxFactory,
) -> None:
    sandbox = sandbox_factory(daily_limit=2)
    with httpx.Client(base_url=sandbox.base_url, headers=v6(sandbox)) as api:
        codes = [api.post("/v6/mail/send", json=payload(token=f"nd-{i}")) for i in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 202]
    queued = codes[2].json()
    assert queued["message"] == "Queued" and queued["status"] == "queued"
    assert HEX32.match(queued["data"]["message_id"])
    (stored,) = sandbox.messages(token="nd-2")
    assert stored["status_code"] == 202 and stored["status"] == "queued"
    assert len(sandbox.messages()) == 3


def test_daily_limit_can_change_at_runtime(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    sandbox.set_faults(daily_limit=0)
    assert api.post("/v6/mail/send", json=payload(), headers=v6(sandbox)).status_code == 202
    sandbox.set_faults(daily_limit=None)
    assert api.post("/v6/mail/send", json=payload(), headers=v6(sandbox)).status_code == 200


def test_gzip_body_is_accepted_and_stored_unzipped(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    body = payload(token="nd-gz")
    raw = json.dumps(body).encode()
    response = api.post(
        "/v6/mail/send",
        content=gzip.compress(raw),
        headers={**v6(sandbox), "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    (stored,) = sandbox.messages(token="nd-gz")
    assert stored["request"] == body


def test_broken_gzip_is_a_named_400(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    response = api.post(
        "/v6/mail/send",
        content=gzip.compress(json.dumps(payload()).encode())[:-12],
        headers={**v6(sandbox), "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 400
    assert fields(response) == ["Content-Encoding"]


def test_unknown_content_encoding_is_a_named_400(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    response = api.post(
        "/v6/mail/send",
        content=json.dumps(payload()).encode(),
        headers={**v6(sandbox), "Content-Type": "application/json", "Content-Encoding": "br"},
    )
    assert response.status_code == 400
    assert fields(response) == ["Content-Encoding"]


def test_request_as_the_official_sdk_sends_it(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    # The generated pepipost SDKs: header api_key, JSON with a charset, their own agent.
    body = json.dumps(payload(token="nd-sdk"), ensure_ascii=False).encode("utf-8")
    response = api.post(
        "/v5.1/mail/send",
        content=body,
        headers={
            "api_key": sandbox.api_key,
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "APIMATIC 2.0",
            "Accept": "application/json",
        },
    )
    assert response.status_code == 200, response.text
    (stored,) = sandbox.messages(token="nd-sdk")
    assert stored["headers"]["user-agent"] == "APIMATIC 2.0"


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin-1",
        None,
    ],
)
def test_wrong_content_type_is_a_400_naming_content_type(
    sandbox: EmbeddedSandbox, api: httpx.Client, content_type: str | None
) -> None:
    headers = v6(sandbox)
    if content_type:
        headers["Content-Type"] = content_type
    response = api.post("/v6/mail/send", content=json.dumps(payload()).encode(), headers=headers)
    assert response.status_code == 400
    assert fields(response) == ["Content-Type"]
    assert sandbox.messages() == []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{", "body"),
        (b"", "body"),
        (b"[1, 2]", "body"),
        (b'"just text"', "body"),
        (b'{"subject": NaN}', "body"),
        (b"\xff\xfe{}", "body"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
    ],
)
def test_bad_json_is_a_400_naming_the_body(
    sandbox: EmbeddedSandbox, api: httpx.Client, raw: bytes, field: str
) -> None:
    response = api.post(
        "/v6/mail/send", content=raw, headers={**v6(sandbox), "Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert fields(response) == [field]
    assert "Traceback" not in response.text


def _huge_body() -> bytes:
    body = payload()
    body["content"][0]["value"] = "<p>" + "x" * (SANDBOX_MAX_BODY_BYTES + 10) + "</p>"
    return json.dumps(body).encode()


def test_body_over_30_mib_is_a_400_naming_the_body(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    response = api.post(
        "/v6/mail/send",
        content=_huge_body(),
        headers={**v6(sandbox), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert fields(response) == ["body"]
    assert sandbox.messages() == []
    # The connection is still usable for the next request.
    assert api.post("/v6/mail/send", json=payload(), headers=v6(sandbox)).status_code == 200


def test_chunked_body_over_30_mib_is_counted_while_read(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    data = _huge_body()

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(data), 1 << 20):
            yield data[i : i + (1 << 20)]

    response = api.post(
        "/v6/mail/send",
        content=chunks(),
        headers={**v6(sandbox), "Content-Type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 400
    assert fields(response) == ["body"]


def test_gzip_bomb_over_30_mib_unzipped_is_a_400(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    small = gzip.compress(_huge_body())
    assert len(small) < 1_000_000
    response = api.post(
        "/v6/mail/send",
        content=small,
        headers={**v6(sandbox), "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 400
    assert fields(response) == ["body"]
    assert "unzipped" in response.json()["message"]


def test_unknown_template_id_is_a_400(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    body = payload(template_id=4242)
    del body["content"]
    response = api.post("/v6/mail/send", json=body, headers=v6(sandbox))
    assert response.status_code == 400
    assert fields(response) == ["template_id"]


def test_foreign_host_header_is_refused(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    # A web page that rebinds its own domain onto 127.0.0.1 still sends its own Host.
    response = api.post(
        "/v6/mail/send", json=payload(), headers={**v6(sandbox), "Host": "evil.example.com"}
    )
    assert response.status_code == 400
    assert fields(response) == ["Host"]
    ok = api.post(
        "/v6/mail/send",
        json=payload(),
        headers={**v6(sandbox), "Host": f"localhost:{sandbox.port}"},
    )
    assert ok.status_code == 200


def test_a_store_failure_is_a_500_with_the_error_body(
    sandbox_factory: SandboxFactory,
) -> None:
    import sqlite3

    sandbox = sandbox_factory()
    assert sandbox.db_path is not None
    # A real failure of the store (as a full disk would be): SQLite refuses the insert.
    with sqlite3.connect(sandbox.db_path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON messages"
            " BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
        )
    conn.close()
    with httpx.Client(base_url=sandbox.base_url, headers=v6(sandbox)) as api:
        response = api.post("/v6/mail/send", json=payload())
        assert response.status_code == 500
        assert fields(response) == ["server"]
        assert "Traceback" not in response.text and "disk" not in response.text
        with sqlite3.connect(sandbox.db_path) as conn:
            conn.execute("DROP TRIGGER refuse")
        conn.close()
        assert api.post("/v6/mail/send", json=payload()).status_code == 200
