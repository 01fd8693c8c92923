"""The draft model and the request body it builds (contract §3), byte for byte."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace

import pytest

from netcore_desktop.core.contract import ApiVersion
from netcore_desktop.core.message import (
    Address,
    Attachment,
    BodyFormat,
    Draft,
    Envelope,
    TrackingSettings,
    build_payload,
    draft_from_dict,
    draft_to_dict,
    payload_bytes,
    with_fresh_tokens,
)
from netcore_desktop.core.render import render_html
from netcore_desktop.core.validation import validate_payload

PDF = b"%PDF-1.4\n\x00\x01\x02\xff binary"
TOKEN = "nd-6f1c0d3e9a2b4c5d8e7f0a1b2c3d4e5f"


def full_draft() -> Draft:
    """A draft that uses every field of the contract."""
    return Draft(
        sender=Address("billing@mail.example.org", "Example Billing"),
        subject="Invoice [%INVOICE_NO%] is ready, [%FIRST_NAME%]",
        body="Hi [%FIRST_NAME%],\n\nInvoice **[%INVOICE_NO%]** is attached.",
        amp="<!doctype html><html ⚡4email><body>Hi</body></html>",
        envelopes=(
            Envelope(
                to=(Address("asha@example.net", "Asha Rao"),),
                cc=(Address("accounts@example.net"),),
                bcc=(Address("audit@example.net", "Audit"),),
                attributes={"FIRST_NAME": "Asha", "INVOICE_NO": "INV-1042"},
                headers={"List-Unsubscribe": "<mailto:unsub@example.org>"},
                attachments=(Attachment("asha.txt", b"for asha"),),
                token=TOKEN,
            ),
            Envelope(
                to=(Address("ben@example.net"), Address("carla@example.net", "Carla")),
                attributes={"FIRST_NAME": "Ben", "INVOICE_NO": "INV-1043"},
            ),
        ),
        reply_to="support@example.org",
        attachments=(Attachment("invoice.pdf", PDF),),
        tags=("invoice", "q3"),
        settings=TrackingSettings(open_track=True, click_track=False, ippool="pool-a"),
        schedule=1_900_000_000,
        bcc=(Address("archive@example.org", "Archive"),),
        priority=1,
    )


def expected_payload(html: str, api_version: ApiVersion) -> dict[str, object]:
    payload: dict[str, object] = {
        "from": {"email": "billing@mail.example.org", "name": "Example Billing"},
        "subject": "Invoice [%INVOICE_NO%] is ready, [%FIRST_NAME%]",
        "content": [
            {"type": "html", "value": html},
            {"type": "amp", "value": "<!doctype html><html ⚡4email><body>Hi</body></html>"},
        ],
        "personalizations": [
            {
                "to": [{"email": "asha@example.net", "name": "Asha Rao"}],
                "cc": [{"email": "accounts@example.net"}],
                "bcc": [{"email": "audit@example.net", "name": "Audit"}],
                "attributes": {"FIRST_NAME": "Asha", "INVOICE_NO": "INV-1042"},
                "headers": {"List-Unsubscribe": "<mailto:unsub@example.org>"},
                "attachments": [
                    {"name": "asha.txt", "content": base64.b64encode(b"for asha").decode()}
                ],
                "token_to": TOKEN,
                "token_cc": TOKEN,
                "token_bcc": TOKEN,
            },
            {
                "to": [
                    {"email": "ben@example.net"},
                    {"email": "carla@example.net", "name": "Carla"},
                ],
                "attributes": {"FIRST_NAME": "Ben", "INVOICE_NO": "INV-1043"},
            },
        ],
        "reply_to": (
            [{"email": "support@example.org"}]
            if api_version is ApiVersion.V6
            else "support@example.org"
        ),
        "attachments": [{"name": "invoice.pdf", "content": base64.b64encode(PDF).decode()}],
        "settings": {"open_track": True, "click_track": False, "ippool": "pool-a"},
        "tags": ["invoice", "q3"],
        "schedule": 1_900_000_000,
        "bcc": [{"email": "archive@example.org"}],
    }
    if api_version is ApiVersion.V6:
        payload["priorityflag"] = 1
    return payload


@pytest.mark.parametrize("version", list(ApiVersion))
def test_full_payload_is_exactly_the_contract_json(version: ApiVersion) -> None:
    draft = full_draft()
    payload = build_payload(draft, version, html="<p>rendered</p>")
    assert payload == expected_payload("<p>rendered</p>", version)
    # Same keys in the same order every time: the wire bytes are predictable.
    assert list(payload) == list(expected_payload("<p>rendered</p>", version))
    assert validate_payload(payload, version) == []


def test_v6_reply_to_is_a_list_and_v5_a_string() -> None:
    draft = Draft(
        sender=Address("a@example.org"),
        subject="s",
        body="b",
        envelopes=(Envelope(to=(Address("b@example.net"),)),),
        reply_to="help@example.org",
    )
    assert build_payload(draft, ApiVersion.V6)["reply_to"] == [{"email": "help@example.org"}]
    assert build_payload(draft, ApiVersion.V5_1)["reply_to"] == "help@example.org"
    assert build_payload(draft, ApiVersion.V5)["reply_to"] == "help@example.org"


def test_priorityflag_only_on_v6() -> None:
    draft = Draft(
        sender=Address("a@example.org"),
        subject="s",
        body="b",
        envelopes=(Envelope(to=(Address("b@example.net"),)),),
        priority=3,
    )
    assert build_payload(draft, ApiVersion.V6)["priorityflag"] == 3
    for version in (ApiVersion.V5_1, ApiVersion.V5):
        payload = build_payload(draft, version)
        assert "priorityflag" not in payload
        assert validate_payload(payload, version) == []


def test_html_is_rendered_by_the_preview_function_when_not_given() -> None:
    draft = full_draft()
    payload = build_payload(draft)
    content = payload["content"]
    assert content[0] == {"type": "html", "value": render_html(draft)}
    assert "<strong>[%INVOICE_NO%]</strong>" in content[0]["value"]


def test_html_body_format_is_sent_as_written() -> None:
    html = "<table><tr><td>Hi [%FIRST_NAME%]</td></tr></table>"
    draft = Draft(
        sender=Address("a@example.org"),
        subject="s",
        body=html,
        body_format=BodyFormat.HTML,
        envelopes=(Envelope(to=(Address("b@example.net"),)),),
    )
    assert build_payload(draft)["content"] == [{"type": "html", "value": html}]


def test_tokens_follow_the_copies_present() -> None:
    draft = with_fresh_tokens(
        Draft(
            sender=Address("a@example.org"),
            subject="s",
            body="b",
            envelopes=(
                Envelope(to=(Address("to@example.net"),)),
                Envelope(to=(Address("to@example.net"),), cc=(Address("cc@example.net"),)),
                Envelope(to=(Address("to@example.net"),), bcc=(Address("bcc@example.net"),)),
            ),
        )
    )
    envs = build_payload(draft)["personalizations"]
    tokens = [e["token_to"] for e in envs]
    assert all(re.fullmatch(r"nd-[0-9a-f]{32}", t) for t in tokens)
    assert len(set(tokens)) == 3, "every envelope gets its own correlation token"
    assert "token_cc" not in envs[0] and "token_bcc" not in envs[0]
    assert envs[1]["token_cc"] == envs[1]["token_to"] and "token_bcc" not in envs[1]
    assert envs[2]["token_bcc"] == envs[2]["token_to"] and "token_cc" not in envs[2]


def test_fresh_tokens_differ_between_sends() -> None:
    draft = full_draft()
    first = with_fresh_tokens(draft).envelopes[0].token
    second = with_fresh_tokens(draft).envelopes[0].token
    assert first != second
    assert draft.envelopes[0].token == TOKEN, "the original draft is left as it was"


def test_no_token_until_asked_for() -> None:
    draft = Draft(
        sender=Address("a@example.org"),
        subject="s",
        body="b",
        envelopes=(Envelope(to=(Address("b@example.net"),), cc=(Address("c@example.net"),)),),
    )
    env = build_payload(draft)["personalizations"][0]
    assert not {"token_to", "token_cc", "token_bcc"} & set(env)


def test_attachments_are_base64_of_the_exact_bytes() -> None:
    data = bytes(range(256)) * 3
    draft = Draft(
        sender=Address("a@example.org"),
        subject="s",
        body="b",
        envelopes=(Envelope(to=(Address("b@example.net"),)),),
        attachments=(Attachment("all-bytes.bin", data), Attachment("empty.txt", b"")),
    )
    atts = build_payload(draft)["attachments"]
    assert [a["name"] for a in atts] == ["all-bytes.bin", "empty.txt"]
    assert base64.b64decode(atts[0]["content"], validate=True) == data
    assert atts[1]["content"] == ""
    assert draft.attachment_bytes() == len(data)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (TrackingSettings(), None),
        (TrackingSettings(open_track=False), {"open_track": False}),
        (
            TrackingSettings(unsubscribe_track=True, footer=False),
            {"unsubscribe_track": True, "footer": False},
        ),
        (TrackingSettings(ippool="transactional"), {"ippool": "transactional"}),
    ],
)
def test_settings_only_when_set(
    settings: TrackingSettings, expected: dict[str, object] | None
) -> None:
    draft = Draft(
        sender=Address("a@example.org"),
        subject="s",
        body="b",
        envelopes=(Envelope(to=(Address("b@example.net"),)),),
        settings=settings,
    )
    payload = build_payload(draft)
    if expected is None:
        assert "settings" not in payload
    else:
        assert payload["settings"] == expected


def test_minimal_draft_leaves_optional_fields_out() -> None:
    draft = Draft(
        sender=Address("a@example.org"),
        subject="Hello",
        body="Hi",
        envelopes=(Envelope(to=(Address("b@example.net"),)),),
    )
    payload = build_payload(draft)
    assert set(payload) == {"from", "subject", "content", "personalizations"}
    assert payload["from"] == {"email": "a@example.org"}
    assert payload["personalizations"] == [{"to": [{"email": "b@example.net"}]}]


def test_schedule_zero_means_now_and_is_left_out() -> None:
    base = Draft(
        sender=Address("a@example.org"),
        subject="s",
        body="b",
        envelopes=(Envelope(to=(Address("b@example.net"),)),),
    )
    assert "schedule" not in build_payload(base)
    later = replace(base, schedule=1_800_000_123)
    assert build_payload(later)["schedule"] == 1_800_000_123


def test_template_id_without_body_sends_no_content() -> None:
    draft = Draft(
        sender=Address("a@example.org"),
        subject="From the template",
        envelopes=(Envelope(to=(Address("b@example.net"),), attributes={"NAME": "B"}),),
        template_id=4711,
    )
    payload = build_payload(draft)
    assert payload["template_id"] == 4711
    assert "content" not in payload
    assert validate_payload(payload) == []


def test_template_id_with_a_body_sends_both() -> None:
    draft = Draft(
        sender=Address("a@example.org"),
        subject="s",
        body="Override",
        envelopes=(Envelope(to=(Address("b@example.net"),)),),
        template_id=12,
    )
    payload = build_payload(draft)
    assert payload["template_id"] == 12
    assert "Override" in payload["content"][0]["value"]


def test_payload_bytes_are_compact_utf8() -> None:
    draft = Draft(
        sender=Address("a@example.org", "Zoë Ñandú"),
        subject="Grüße – 你好",
        body="b",
        envelopes=(Envelope(to=(Address("b@example.net"),)),),
    )
    payload = build_payload(draft, html="<p>x</p>")
    raw = payload_bytes(payload)
    assert "Grüße – 你好".encode() in raw
    assert b": " not in raw and b", " not in raw
    assert json.loads(raw) == payload
    assert payload_bytes(build_payload(draft, html="<p>x</p>")) == raw


def test_credit_count_counts_global_bcc_per_envelope() -> None:
    draft = full_draft()
    # Envelope 1: 1 to + 1 cc + 1 bcc; envelope 2: 2 to; global bcc 1 x 2 envelopes.
    assert draft.credit_count() == 3 + 2 + 2
    assert len(draft.recipients()) == 3 + 2 + 1


def test_draft_round_trips_through_json() -> None:
    draft = full_draft()
    data = json.loads(json.dumps(draft_to_dict(draft)))
    assert data["format"] == "netcore-desktop-draft"
    restored = draft_from_dict(data)
    assert restored == draft
    assert payload_bytes(build_payload(restored)) == payload_bytes(build_payload(draft))


def test_round_trip_keeps_unset_settings_and_html_format() -> None:
    draft = Draft(
        sender=Address("a@example.org"),
        subject="s",
        body="<p>x</p>",
        body_format=BodyFormat.HTML,
        settings=TrackingSettings(click_track=False),
        template_id=None,
        priority=None,
    )
    restored = draft_from_dict(json.loads(json.dumps(draft_to_dict(draft))))
    assert restored == draft
    assert restored.settings.open_track is None
    assert restored.settings.click_track is False


@pytest.mark.parametrize(
    "data",
    [
        {"envelopes": "not a list of envelopes"},
        {"attachments": [{"content": "AAAA"}]},
        {"body_format": "rtf"},
        {"priority": "high"},
        {"sender": "someone"},
    ],
)
def test_malformed_draft_file_is_a_value_error(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Not a valid draft"):
        draft_from_dict(data)
