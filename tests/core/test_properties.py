"""Property-based tests of the core: valid drafts build valid requests, deterministically, and
pass the pre-send checks; nothing the person types, and no request body, crashes the core."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from netcore_desktop.core.checks import FIELDS, Severity, has_blocking, parse_field, run_checks
from netcore_desktop.core.contract import SEND_PATHS, ApiVersion
from netcore_desktop.core.message import (
    Draft,
    build_payload,
    draft_from_dict,
    draft_to_dict,
    payload_bytes,
    with_fresh_tokens,
)
from netcore_desktop.core.render import (
    find_placeholders,
    html_to_text,
    markdown_to_html,
    preview_html,
    render_html,
    substitute,
)
from netcore_desktop.core.validation import validate_payload

from ._hyp import core_settings
from ._strategies import NOW, any_text, keys, markdown_bodies, messy_drafts, valid_drafts

VERSIONS = list(ApiVersion)

# --- valid drafts -----------------------------------------------------------------------------


@core_settings(1.0)
@given(valid_drafts())
def test_valid_draft_builds_a_valid_request_for_every_version(draft: Draft) -> None:
    draft = with_fresh_tokens(draft)
    html = render_html(draft)
    for version in VERSIONS:
        payload = build_payload(draft, version, html=html)
        assert validate_payload(payload, version) == []
        # What goes on the wire decodes to the same request.
        assert validate_payload(json.loads(payload_bytes(payload)), version) == []
        assert len(payload["personalizations"]) == len(draft.envelopes)


@core_settings(1.0)
@given(valid_drafts())
def test_valid_draft_passes_the_checks(draft: Draft) -> None:
    for version in VERSIONS:
        problems = run_checks(draft, api_version=version, now=NOW)
        assert not has_blocking(problems), [p for p in problems if p.blocking]
        credits = [p for p in problems if p.severity is Severity.INFO and "credit" in p.message]
        assert len(credits) == 1 and f"{draft.credit_count():,} credit" in credits[0].message


@core_settings(0.5)
@given(valid_drafts())
def test_building_is_deterministic(draft: Draft) -> None:
    draft = with_fresh_tokens(draft)
    copy = draft_from_dict(json.loads(json.dumps(draft_to_dict(draft))))
    assert copy == draft
    for version in VERSIONS:
        first = payload_bytes(build_payload(draft, version))
        assert payload_bytes(build_payload(draft, version)) == first
        assert payload_bytes(build_payload(copy, version)) == first


@core_settings(0.5)
@given(valid_drafts(max_envelopes=3))
def test_preview_of_each_envelope_has_every_value_filled(draft: Draft) -> None:
    sent = render_html(draft)
    used = set(find_placeholders(draft.subject, draft.body))
    for i, env in enumerate(draft.envelopes):
        preview = preview_html(draft, i, rendered=sent)
        assert preview == substitute(sent, env.attributes)
        assert not used & set(find_placeholders(preview))


@core_settings(0.25, fixtures=True)
@given(draft=valid_drafts(max_envelopes=3), version=st.sampled_from(VERSIONS))
def test_sandbox_accepts_valid_drafts_over_http(
    sandbox: Any, http_client: Any, draft: Draft, version: ApiVersion
) -> None:
    """The sandbox (a real HTTP server on loopback) answers 200 to every valid draft.

    ``sandbox`` is the shared fixture of tests/conftest.py: reset once per test, not per
    example, which is fine since every example checks only its own message.
    """
    base = sandbox.base_url.rstrip("/")
    if draft.template_id is not None:
        # Like Netcore, the sandbox only takes the id of a template stored on the account.
        created = http_client.post(
            f"{base}/v6/templates",
            json={"name": "property test", "html": "<p>Hi [%NAME%]</p>"},
            headers={"Authorization": f"Bearer {sandbox.api_key}"},
        )
        assert created.status_code == 201, created.text
        draft = replace(draft, template_id=created.json()["data"]["id"])
    payload = build_payload(with_fresh_tokens(draft), version)
    if version is ApiVersion.V6:
        auth = {"Authorization": f"Bearer {sandbox.api_key}"}
    else:
        auth = {"api_key": sandbox.api_key}
    response = http_client.post(
        base + SEND_PATHS[version],
        content=payload_bytes(payload),
        headers={"Content-Type": "application/json", **auth},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    message_id = body["data"]["message_id"]
    stored = http_client.get(f"{base}/sandbox/messages/{message_id}")
    assert stored.status_code == 200
    assert stored.json()["request"] == payload


@pytest.fixture(scope="module")
def http_client() -> Any:
    import httpx

    # trust_env=False: a proxy from the environment must never see loopback traffic.
    with httpx.Client(timeout=10, trust_env=False) as client:
        yield client


# --- messy drafts: the checks stand between the person and a refused request -----------------


@core_settings(1.5)
@given(draft=messy_drafts(), version=st.sampled_from(VERSIONS))
def test_a_draft_without_check_errors_is_never_refused(draft: Draft, version: ApiVersion) -> None:
    problems = run_checks(draft, api_version=version, now=NOW)
    for problem in problems:
        ref = parse_field(problem.field)
        assert ref.name in FIELDS
        assert problem.message.strip()
        if problem.envelope is not None:
            assert 0 <= problem.envelope < len(draft.envelopes)
    payload = build_payload(draft, version)
    errors = validate_payload(payload, version)
    if not has_blocking(problems):
        assert errors == [], (errors, problems)


@core_settings(1.0)
@given(draft=messy_drafts(), version=st.sampled_from(VERSIONS))
def test_payload_builder_never_crashes(draft: Draft, version: ApiVersion) -> None:
    payload = build_payload(with_fresh_tokens(draft), version)
    raw = payload_bytes(payload)
    decoded = json.loads(raw)
    assert decoded["subject"] == draft.subject
    for sent, att in zip(decoded.get("attachments", []), draft.attachments, strict=True):
        assert base64.b64decode(sent["content"]) == att.data
    restored = draft_from_dict(json.loads(json.dumps(draft_to_dict(draft))))
    assert restored == draft


@core_settings(0.5)
@given(
    draft=messy_drafts(),
    lone=st.sampled_from(["\ud800", "\udfff", "a\udc80b"]),
)
def test_lone_surrogates_from_a_damaged_file_do_not_break_sending(draft: Draft, lone: str) -> None:
    damaged = replace(draft, subject=draft.subject + lone, body=lone + draft.body)
    raw = payload_bytes(build_payload(damaged))
    assert "\ufffd" in json.loads(raw)["subject"]


# --- the renderer never crashes, and keeps placeholders ---------------------------------------


@core_settings(1.5)
@given(st.text() | st.text(st.sampled_from("#*_[]()!`|<>-=:%\\\n &;\t0123ab"), max_size=120))
def test_renderer_never_crashes_on_any_text(source: str) -> None:
    html = markdown_to_html(source)
    assert html.startswith("<!DOCTYPE html>")
    assert "<style" not in html
    text = html_to_text(html)
    assert text.endswith("\n")
    assert html_to_text(source).endswith("\n")
    assert substitute(source, {}) == source
    substitute(source, {"A": source}, escape=True)
    # Every placeholder of the source is still in the HTML, unless Markdown made it a
    # link reference definition or HTML comment (which are not shown).
    if "]:" not in source and "<!--" not in source and "<" not in source:
        for key in find_placeholders(source):
            assert f"[%{key}%]" in html


@core_settings(1.0)
@given(st.data())
def test_placeholders_in_markdown_survive_rendering(data: st.DataObject) -> None:
    names = data.draw(st.lists(keys, min_size=1, max_size=4, unique=True))
    source = data.draw(markdown_bodies(names))
    html = markdown_to_html(source)
    assert set(find_placeholders(source)) <= set(find_placeholders(html))
    values = {k: f"<v{i}>" for i, k in enumerate(names)}
    filled = substitute(html, values, escape=True)
    assert not set(find_placeholders(filled)) & set(names)


@core_settings(1.0)
@given(st.binary(max_size=300))
def test_html_to_text_survives_any_decoded_bytes(raw: bytes) -> None:
    assert html_to_text(raw.decode("latin-1")).endswith("\n")


@core_settings(1.0)
@given(st.text(), st.dictionaries(any_text, any_text, max_size=4))
def test_substitute_never_crashes(text: str, values: dict[str, str]) -> None:
    out = substitute(text, values)
    if not values:
        assert out == text


# --- the request validator never raises, and always names the field ---------------------------


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=10), children, max_size=4
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    _containers,
    max_leaves=20,
)
TOP_FIELDS = [
    "from", "subject", "content", "personalizations", "reply_to", "template_id", "attachments",
    "settings", "tags", "schedule", "bcc", "priorityflag",
]  # fmt: skip
ENVELOPE_FIELDS = [
    "to", "cc", "bcc", "attributes", "headers", "attachments", "token_to", "token_cc", "token_bcc",
]  # fmt: skip
near_payloads = st.fixed_dictionaries(
    {},
    optional={
        **{k: json_values for k in TOP_FIELDS},
        "personalizations": st.lists(
            st.fixed_dictionaries({}, optional={k: json_values for k in ENVELOPE_FIELDS})
            | json_values,
            max_size=3,
        ),
        "from": st.fixed_dictionaries({}, optional={"email": json_values, "name": json_values}),
    },
)


def _assert_named(errors: list[Any]) -> None:
    for error in errors:
        assert isinstance(error.field, str) and error.field
        assert error.field.split("[")[0].split(".")[0] in {*TOP_FIELDS, "body"}
        assert isinstance(error.message, str) and error.message.strip()


@core_settings(2.0)
@given(json_values, st.sampled_from(VERSIONS))
def test_validator_never_raises_on_any_json(value: Any, version: ApiVersion) -> None:
    errors = validate_payload(value, version)
    _assert_named(errors)
    if not isinstance(value, dict):
        assert [e.field for e in errors] == ["body"]


@core_settings(2.0)
@given(near_payloads, st.sampled_from(VERSIONS))
def test_validator_names_the_field_of_near_misses(value: Any, version: ApiVersion) -> None:
    errors = validate_payload(value, version)
    _assert_named(errors)
    # A request always needs a sender, a subject and recipients: something must be said.
    if "from" not in value or "subject" not in value or "personalizations" not in value:
        assert errors


draft_files = st.fixed_dictionaries(
    {},
    optional={
        k: json_values
        for k in (
            "sender", "subject", "body", "body_format", "amp", "reply_to", "envelopes",
            "attachments", "tags", "settings", "schedule", "bcc", "priority", "template_id",
        )
    },
)  # fmt: skip


@core_settings(1.0)
@given(json_values | draft_files)
@example({"schedule": float("inf")})
@example({"template_id": float("-inf")})
@example({"priority": float("nan")})
@example({"envelopes": [{"to": [{"email": 1}], "attributes": {"A": None}}], "tags": "ab"})
def test_a_damaged_draft_file_is_a_value_error_or_a_draft(data: Any) -> None:
    try:
        draft = draft_from_dict(data)
    except ValueError as exc:
        assert str(exc).startswith("Not a valid draft")
        return
    # Whatever was read is a draft the rest of the core can work with.
    run_checks(draft, now=NOW)
    build_payload(draft)
