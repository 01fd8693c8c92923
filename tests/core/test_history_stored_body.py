"""The history stores the request body as it was sent, and still never a secret.

The sending path hands the history the exact bytes of the request body instead of having it
serialise the payload again, and secrets are looked for in the serialised text first. These
tests hold that shortcut to the same promises as the slow path: the stored payload is the
body byte for byte, and a key, a password or a pasted credential never reaches the file in
any form (as written, JSON-escaped, or with look-alike letters the patterns match).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netcore_desktop.core.contract import ApiVersion
from netcore_desktop.core.history import FILE_NAME, History
from netcore_desktop.core.message import (
    Address,
    Draft,
    Envelope,
    build_payload,
    payload_bytes,
    with_fresh_tokens,
)
from netcore_desktop.core.secrets import register_secret

from ._stored import stored_values

ENDPOINT = "http://127.0.0.1:8025/v6/mail/send"


def _draft(body: str, subject: str = "Your invoice") -> Draft:
    return with_fresh_tokens(
        Draft(
            sender=Address("billing@mail.example.org", "Example Billing"),
            subject=subject,
            body=body,
            envelopes=(Envelope(to=(Address("asha@example.net", "Asha Rao"),)),),
            tags=("invoice",),
        )
    )


def _record(history: History, draft: Draft, *, as_bytes: bool) -> tuple[int, bytes]:
    payload = build_payload(draft, ApiVersion.V6)
    body = payload_bytes(payload)
    attempt_id = history.record_attempt(
        draft=draft,
        payload=payload,
        profile="Production",
        transport="api",
        api_version="v6",
        endpoint=ENDPOINT,
        payload_json=body if as_bytes else None,
    )
    return attempt_id, body


def _file_contents(path: Path) -> bytes:
    """Every value of every table, decompressed where compressed, plus the raw files."""
    raw = [p.read_bytes() for p in path.parent.iterdir() if p.is_file()]
    return b"\n".join([*raw, stored_values(path)])


@pytest.mark.parametrize("as_bytes", [True, False])
def test_the_stored_payload_is_the_body_that_was_sent(tmp_path: Path, as_bytes: bool) -> None:
    # Long enough to be stored compressed, with non-ASCII text and characters JSON escapes.
    body = "Grüße, Zoë \"quoted\" \\ back\tslash 日本 " * 40
    with History(tmp_path / FILE_NAME) as history:
        attempt_id, sent = _record(history, _draft(body), as_bytes=as_bytes)
        entry = history.get(attempt_id)
        assert entry.payload_json.encode("utf-8") == sent
        assert entry.payload["content"][0]["value"] == json.loads(sent)["content"][0]["value"]
        assert entry.draft.body == body
        assert [e.id for e in history.search("Zoë quoted")] == [attempt_id]


# Each case alone in a message: a secret with characters JSON escapes (so the stored JSON
# holds it escaped), a plain key, and credentials the app never stored, which are masked by
# pattern whatever their case, even with the Kelvin sign that regular expressions read as k.
PASSWORD = 'pa"ss\\word-7Hq2'
KEY = "key-9d8c7b6a5f4e3d2c1b0a"
CASES = {
    "escaped password": (f"Debug notes: the password is {PASSWORD}.", PASSWORD),
    "key": (f"Debug notes: the key is {KEY}.", KEY),
    "bearer header": ("Sent with authorization: BEARER pasted-abc123", "pasted-abc123"),
    "api key header": ("Sent with X-API-Key: pasted-k3y999", "pasted-k3y999"),
    "api key with a Kelvin sign": ("Config: API_\u212aEY=pasted-xyz789", "pasted-xyz789"),
}


@pytest.mark.parametrize("as_bytes", [True, False])
@pytest.mark.parametrize("case", sorted(CASES))
def test_secrets_in_a_body_given_as_bytes_are_masked(
    tmp_path: Path, case: str, as_bytes: bool
) -> None:
    register_secret(PASSWORD)
    register_secret(KEY)
    text, secret = CASES[case]
    path = tmp_path / FILE_NAME
    with History(path) as history:
        attempt_id, _ = _record(history, _draft(text), as_bytes=as_bytes)
        entry = history.get(attempt_id)
        for stored in (entry.draft_json, entry.payload_json):
            assert secret not in stored and json.dumps(secret)[1:-1] not in stored
            assert "(masked)" in stored
        assert [e.id for e in history.search("debug notes")] == (
            [attempt_id] if text.startswith("Debug") else []
        )
    stored_bytes = _file_contents(path)
    assert secret.encode() not in stored_bytes
    assert json.dumps(secret)[1:-1].encode() not in stored_bytes
