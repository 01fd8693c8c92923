"""Fuzzing the sandbox's request parser: no input gives a 5xx, every 400 names a field."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netcore_desktop.sandbox import EmbeddedSandbox

from .conftest import fields, payload

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)

FIELDS = ["from", "subject", "content", "personalizations", "reply_to", "template_id",
          "attachments", "settings", "tags", "schedule", "bcc", "priorityflag"]


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code == 200:
        assert response.json()["status"] == "success"
        return
    assert response.status_code in (400, 401), response.text
    named = fields(response)
    assert named and all(named), response.text


def _post(api: httpx.Client, sandbox: EmbeddedSandbox, raw: bytes, **headers: str) -> None:
    base = {"Authorization": f"Bearer {sandbox.api_key}", "Content-Type": "application/json"}
    _check(api.post("/v6/mail/send", content=raw, headers={**base, **headers}))


def test_arbitrary_bytes_never_crash_the_parser(sandbox_server: EmbeddedSandbox) -> None:
    sandbox_server.reset()
    with httpx.Client(base_url=sandbox_server.base_url) as api:

        @SETTINGS
        @given(st.binary(max_size=4000))
        def check(raw: bytes) -> None:
            _post(api, sandbox_server, raw)

        check()


def test_arbitrary_json_values_never_crash_the_parser(sandbox_server: EmbeddedSandbox) -> None:
    sandbox_server.reset()
    with httpx.Client(base_url=sandbox_server.base_url) as api:

        @SETTINGS
        @given(json_values)
        def check(value: Any) -> None:
            _post(api, sandbox_server, json.dumps(value).encode())

        check()


def test_damaged_payloads_are_refused_field_by_field(sandbox_server: EmbeddedSandbox) -> None:
    sandbox_server.reset()
    with httpx.Client(base_url=sandbox_server.base_url) as api:

        @SETTINGS
        @given(st.dictionaries(st.sampled_from(FIELDS), json_values, min_size=1, max_size=3),
               st.lists(st.sampled_from(FIELDS), max_size=2))
        def check(changes: dict[str, Any], removed: list[str]) -> None:
            body = payload(**changes)
            for key in removed:
                body.pop(key, None)
            for version, auth in (("v6", "Authorization"), ("v5.1", "api_key")):
                value = f"Bearer {sandbox_server.api_key}" if auth == "Authorization" else (
                    sandbox_server.api_key
                )
                _check(api.post(f"/{version}/mail/send", json=body, headers={auth: value}))

        check()


def test_odd_headers_never_crash_the_parser(sandbox_server: EmbeddedSandbox) -> None:
    sandbox_server.reset()
    good = json.dumps(payload()).encode()
    with httpx.Client(base_url=sandbox_server.base_url) as api:

        @SETTINGS
        @given(
            st.sampled_from(["application/json", "application/json; charset=UTF-8",
                             "application/json;charset=\"utf-8\"", "text/html", "",
                             "application/json; charset=ascii", "multipart/form-data"])
            # httpx itself refuses header values with spaces around them.
            | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).filter(
                lambda s: s == s.strip()
            ),
            st.sampled_from(["", "gzip", "identity", "deflate", "GZIP", "gzip, br"]),
            st.booleans(),
        )
        def check(ctype: str, encoding: str, zipped: bool) -> None:
            raw = gzip.compress(good) if zipped else good
            headers = {"Content-Type": ctype}
            if encoding:
                headers["Content-Encoding"] = encoding
            _post(api, sandbox_server, raw, **headers)

        check()
