"""validate_payload: one definition of a valid request, naming the field of every problem."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from netcore_desktop.core.contract import ApiVersion
from netcore_desktop.core.message import (
    Address,
    Attachment,
    Draft,
    Envelope,
    TrackingSettings,
    build_payload,
    with_fresh_tokens,
)
from netcore_desktop.core.validation import FieldError, email_problem, validate_payload


def valid(version: ApiVersion = ApiVersion.V6) -> dict[str, Any]:
    draft = Draft(
        sender=Address("sender@mail.example.org", "Sender"),
        subject="Hello [%NAME%]",
        body="Hi [%NAME%]",
        envelopes=(
            Envelope(
                to=(Address("a@example.net", "A"), Address("b@example.net")),
                cc=(Address("c@example.net"),),
                bcc=(Address("d@example.net"),),
                attributes={"NAME": "A"},
                headers={"X-Campaign": "spring"},
                attachments=(Attachment("a.txt", b"abc"),),
            ),
        ),
        reply_to="reply@example.org",
        attachments=(Attachment("b.txt", b"def"),),
        tags=("t",),
        settings=TrackingSettings(open_track=True, ippool="p"),
        schedule=1_900_000_000,
        bcc=(Address("e@example.org"),),
        priority=2 if version is ApiVersion.V6 else None,
    )
    return build_payload(with_fresh_tokens(draft), version, html="<p>Hi [%NAME%]</p>")


Mutation = Callable[[dict[str, Any]], object]


def setter(path: str, value: object) -> Mutation:
    """Set (or with ``...`` delete) the item at a dotted path such as ``a.0.b``."""

    def mutate(payload: dict[str, Any]) -> object:
        *parents, last = path.split(".")
        node: Any = payload
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if value is ...:
            del node[key]
        else:
            node[key] = value
        return payload

    return mutate


P0 = "personalizations.0"

CASES: list[tuple[str, Mutation, str]] = [
    ("list body", lambda p: [p], "body"),
    ("string body", lambda p: "hello", "body"),
    ("null body", lambda p: None, "body"),
    ("no from", setter("from", ...), "from"),
    ("from is a string", setter("from", "a@example.org"), "from"),
    ("from without email", setter("from.email", ...), "from.email"),
    ("from email invalid", setter("from.email", "nobody"), "from.email"),
    ("from name not text", setter("from.name", 5), "from.name"),
    ("no subject", setter("subject", ...), "subject"),
    ("blank subject", setter("subject", "  "), "subject"),
    ("subject not text", setter("subject", ["x"]), "subject"),
    ("no content, no template", setter("content", ...), "content"),
    ("content not a list", setter("content", "<p>x</p>"), "content"),
    ("content empty", setter("content", []), "content"),
    ("content item not object", setter("content.0", "html"), "content[0]"),
    ("content type text", setter("content.0.type", "text"), "content[0].type"),
    ("content value empty", setter("content.0.value", ""), "content[0].value"),
    ("content value not text", setter("content.0.value", 1), "content[0].value"),
    ("AMP only", setter("content", [{"type": "amp", "value": "<html ⚡4email/>"}]), "content"),
    ("template id text", setter("template_id", "12"), "template_id"),
    ("template id zero", setter("template_id", 0), "template_id"),
    ("template id bool", setter("template_id", True), "template_id"),
    ("no personalizations", setter("personalizations", ...), "personalizations"),
    ("personalizations empty", setter("personalizations", []), "personalizations"),
    ("personalizations object", setter("personalizations", {}), "personalizations"),
    ("envelope not object", setter(P0, "a@example.net"), "personalizations[0]"),
    ("envelope without to", setter(f"{P0}.to", ...), "personalizations[0].to"),
    ("envelope to empty", setter(f"{P0}.to", []), "personalizations[0].to"),
    ("to address invalid", setter(f"{P0}.to.1.email", "b@"), "personalizations[0].to[1].email"),
    ("to address not object", setter(f"{P0}.to.0", "a@example.net"), "personalizations[0].to[0]"),
    ("to name not text", setter(f"{P0}.to.0.name", None), "personalizations[0].to[0].name"),
    ("cc not a list", setter(f"{P0}.cc", "c@example.net"), "personalizations[0].cc"),
    ("bcc item not object", setter(f"{P0}.bcc.0", 7), "personalizations[0].bcc[0]"),
    ("attribute not text", setter(f"{P0}.attributes.NAME", 1), "personalizations[0].attributes"),
    ("attributes a list", setter(f"{P0}.attributes", ["NAME"]), "personalizations[0].attributes"),
    (
        "header name with space",
        setter(f"{P0}.headers.Bad Name", "x"),
        "personalizations[0].headers.Bad Name",
    ),
    (
        "header value line break",
        setter(f"{P0}.headers.X-Campaign", "a\r\nBcc: x@example.com"),
        "personalizations[0].headers.X-Campaign",
    ),
    (
        "envelope attachment not base64",
        setter(f"{P0}.attachments.0.content", "%%%"),
        "personalizations[0].attachments[0].content",
    ),
    ("token too long", setter(f"{P0}.token_to", "x" * 256), "personalizations[0].token_to"),
    ("token not text", setter(f"{P0}.token_cc", 12), "personalizations[0].token_cc"),
    ("reply-to invalid", setter("reply_to", [{"email": "x"}]), "reply_to[0].email"),
    ("reply-to number", setter("reply_to", 5), "reply_to"),
    ("reply-to bad string", setter("reply_to", "not an address"), "reply_to"),
    ("attachments object", setter("attachments", {"name": "a"}), "attachments"),
    ("attachment without name", setter("attachments.0.name", ""), "attachments[0].name"),
    ("attachment item text", setter("attachments.0", "file.pdf"), "attachments[0]"),
    ("attachment content number", setter("attachments.0.content", 3), "attachments[0].content"),
    ("settings a list", setter("settings", ["open_track"]), "settings"),
    ("unknown setting", setter("settings.spam_check", True), "settings.spam_check"),
    ("setting not bool", setter("settings.open_track", "yes"), "settings.open_track"),
    ("ippool not text", setter("settings.ippool", 3), "settings.ippool"),
    ("tags a string", setter("tags", "a,b"), "tags"),
    ("tag not text", setter("tags", ["a", 2]), "tags"),
    ("schedule negative", setter("schedule", -1), "schedule"),
    ("schedule text", setter("schedule", "tomorrow"), "schedule"),
    ("schedule bool", setter("schedule", True), "schedule"),
    ("schedule float", setter("schedule", 1.5), "schedule"),
    ("global bcc not list", setter("bcc", {"email": "x@example.org"}), "bcc"),
    ("global bcc invalid", setter("bcc.0.email", "x@y@z"), "bcc[0].email"),
    ("priority out of range", setter("priorityflag", 4), "priorityflag"),
    ("priority bool", setter("priorityflag", True), "priorityflag"),
    ("priority text", setter("priorityflag", "1"), "priorityflag"),
    ("priority a list", setter("priorityflag", []), "priorityflag"),
    ("priority a float", setter("priorityflag", 1.0), "priorityflag"),
    ("content type a list", setter("content.0.type", ["html"]), "content[0].type"),
]


@pytest.mark.parametrize("version", list(ApiVersion))
def test_built_payloads_are_valid(version: ApiVersion) -> None:
    assert validate_payload(valid(version), version) == []


@pytest.mark.parametrize(("name", "mutate", "field"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_its_field(name: str, mutate: Mutation, field: str) -> None:
    payload = mutate(copy.deepcopy(valid()))
    errors = validate_payload(payload, ApiVersion.V6)
    assert field in [e.field for e in errors], errors
    assert all(e.field and e.message.strip() for e in errors)


def test_v5_refuses_v6_only_shapes() -> None:
    payload = valid(ApiVersion.V5_1)
    payload["priorityflag"] = 1
    payload["reply_to"] = [{"email": "reply@example.org"}]
    fields = {e.field for e in validate_payload(payload, ApiVersion.V5_1)}
    assert fields == {"priorityflag", "reply_to"}


def test_template_id_makes_content_optional() -> None:
    payload = valid()
    del payload["content"]
    payload["template_id"] = 42
    assert validate_payload(payload) == []
    payload["content"] = []
    assert validate_payload(payload) == []


def test_every_problem_is_reported_at_once() -> None:
    payload = {"from": {"email": "x"}, "personalizations": [{"to": []}, 3], "tags": 1}
    fields = [e.field for e in validate_payload(payload)]
    assert fields == [
        "from.email",
        "subject",
        "content",
        "personalizations[0].to",
        "personalizations[1]",
        "tags",
    ]


def test_field_error_json_is_the_contract_error_item() -> None:
    error = FieldError("subject", "The subject is missing.")
    assert error.to_json() == {
        "field": "subject",
        "message": "The subject is missing.",
        "description": "The subject is missing.",
    }


@pytest.mark.parametrize(
    "address",
    ["", " ", " a@example.org", "a@example.org ", "plain", "a@b", "a@@example.org", "a b@c.org"],
)
def test_email_problem_explains_bad_addresses(address: str) -> None:
    problem = email_problem(address)
    assert problem and problem.endswith(".")


@pytest.mark.parametrize(
    "address",
    ["a@example.org", "first.last+tag@sub.example.co.uk", "x@bounce.invalid", "ü@exämple.de"],
)
def test_email_problem_accepts_good_addresses(address: str) -> None:
    assert email_problem(address) is None
