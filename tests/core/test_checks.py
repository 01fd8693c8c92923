"""Pre-send checks: each fires on its own problem, with the right field and severity."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from netcore_desktop.core.checks import (
    FIELD_AMP,
    FIELD_ATTACHMENTS,
    FIELD_BCC,
    FIELD_BODY,
    FIELD_CC,
    FIELD_FROM,
    FIELD_PRIORITY,
    FIELD_RECIPIENTS,
    FIELD_REPLY_TO,
    FIELD_SCHEDULE,
    FIELD_SUBJECT,
    FIELD_TAGS,
    FIELD_TEMPLATE_ID,
    FIELD_TO,
    FIELDS,
    LIVE_CREDIT_WARN,
    FieldRef,
    Problem,
    Severity,
    has_blocking,
    parse_field,
    placeholder_field,
    run_checks,
)
from netcore_desktop.core.contract import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENT_WARN_BYTES,
    GMAIL_CLIP_BYTES,
    ApiVersion,
)
from netcore_desktop.core.message import (
    Address,
    Attachment,
    BodyFormat,
    Draft,
    Envelope,
    TrackingSettings,
    build_payload,
)
from netcore_desktop.core.render import render_html
from netcore_desktop.core.validation import validate_payload

NOW = 1_750_000_000.0

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


def clean() -> Draft:
    """A draft with nothing wrong: two envelopes, every placeholder filled."""
    return Draft(
        sender=Address("news@mail.example.org", "Example News"),
        subject="Your May digest, [%FIRST_NAME%]",
        body="Hi [%FIRST_NAME%],\n\nHere is your [digest](https://example.org/d?u=[%USER_ID%]).",
        envelopes=(
            Envelope(
                to=(Address("asha@example.net", "Asha"),),
                cc=(Address("asha.work@example.com"),),
                attributes={"FIRST_NAME": "Asha", "USER_ID": "u-1"},
            ),
            Envelope(
                to=(Address("ben@example.net"),),
                attributes={"FIRST_NAME": "Ben", "USER_ID": "u-2"},
                headers={"List-Unsubscribe": "<mailto:unsub@example.org>"},
            ),
        ),
        reply_to="help@example.org",
        attachments=(Attachment("digest.pdf", b"%PDF-1.4 small"),),
        tags=("digest", "may 2025"),
        settings=TrackingSettings(open_track=True),
        schedule=int(NOW) + 3600,
        bcc=(Address("archive@example.org"),),
        priority=3,
    )


def envelope(i: int, **changes: object) -> Callable[[Draft], Draft]:
    """A mutation that changes envelope ``i`` of the clean draft."""

    def mutate(d: Draft) -> Draft:
        envs = list(d.envelopes)
        envs[i] = replace(envs[i], **changes)  # type: ignore[arg-type]
        return replace(d, envelopes=tuple(envs))

    return mutate


def draft(**changes: object) -> Callable[[Draft], Draft]:
    """A mutation that changes top-level fields of the clean draft."""
    return lambda d: replace(d, **changes)  # type: ignore[arg-type]


def check(d: Draft, **kwargs: object) -> list[Problem]:
    return run_checks(d, now=NOW, **kwargs)  # type: ignore[arg-type]


def not_info(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity is not Severity.INFO]


def test_clean_draft_only_reports_the_credit_count() -> None:
    problems = check(clean())
    assert problems == [
        Problem(
            FIELD_RECIPIENTS,
            INFO,
            "This send costs 5 credits (one per To, Cc and Bcc address, "
            "with the global Bcc counted once per recipient row).",
        )
    ]
    assert not has_blocking(problems)
    assert validate_payload(build_payload(clean())) == []


# Each case: a mutation of the clean draft -> (field, severity, envelope, words in the message).
CASES: dict[str, tuple[Callable[[Draft], Draft], str, Severity, int | None, tuple[str, ...]]] = {
    "no sender": (draft(sender=Address("")), FIELD_FROM, ERROR, None, ("sender",)),
    "bad sender": (draft(sender=Address("news@", "News")), FIELD_FROM, ERROR, None, ("'news@'",)),
    "bad reply-to": (draft(reply_to="help at example"), FIELD_REPLY_TO, ERROR, None, ("Reply-To",)),
    "bad to": (
        envelope(1, to=(Address("ben@example"),)),
        FIELD_TO,
        ERROR,
        1,
        ("'ben@example'", "row 2"),
    ),
    "empty to address": (envelope(0, to=(Address(" "),)), FIELD_TO, ERROR, 0, ("empty",)),
    "bad cc": (envelope(0, cc=(Address("a b@example.net"),)), FIELD_CC, ERROR, 0, ("Cc",)),
    "bad envelope bcc": (
        envelope(1, bcc=(Address("x@@example.net"),)),
        FIELD_BCC,
        ERROR,
        1,
        ("Bcc of",),
    ),
    "bad global bcc": (draft(bcc=(Address("archive@"),)), FIELD_BCC, ERROR, None, ("global Bcc",)),
    "no envelopes": (draft(envelopes=()), FIELD_TO, ERROR, None, ("at least one",)),
    "envelope without to": (
        envelope(1, to=(), cc=(Address("c@example.net"),)),
        FIELD_TO,
        ERROR,
        1,
        ("row 2",),
    ),
    "duplicate in one envelope": (
        envelope(0, cc=(Address("ASHA@example.net"),)),
        FIELD_CC,
        WARNING,
        0,
        ("twice", "credit"),
    ),
    "duplicate across envelopes": (
        envelope(1, to=(Address("asha@example.net"),)),
        FIELD_TO,
        WARNING,
        1,
        ("recipient row 1", "more than once", "credit"),
    ),
    "global bcc also a recipient": (
        draft(bcc=(Address("ben@example.net"),)),
        FIELD_BCC,
        WARNING,
        None,
        ("global Bcc", "row 2"),
    ),
    "empty subject": (draft(subject="   "), FIELD_SUBJECT, ERROR, None, ("subject",)),
    "subject line break": (
        draft(subject="Hello\nthere"),
        FIELD_SUBJECT,
        WARNING,
        None,
        ("line break",),
    ),
    "empty body": (draft(body="\n  \n"), FIELD_BODY, ERROR, None, ("template",)),
    "bad template id": (draft(template_id=0), FIELD_TEMPLATE_ID, ERROR, None, ("template",)),
    "placeholder without value": (
        envelope(1, attributes={"USER_ID": "u-2"}),
        placeholder_field(1, "FIRST_NAME"),
        ERROR,
        1,
        ("[%FIRST_NAME%]", "ben@example.net", "subject and body", "as it is"),
    ),
    "placeholder empty": (
        envelope(0, attributes={"FIRST_NAME": " ", "USER_ID": "u-1"}),
        placeholder_field(0, "FIRST_NAME"),
        WARNING,
        0,
        ("empty", "asha@example.net"),
    ),
    "placeholder only in AMP": (
        draft(amp="<html ⚡4email><body>[%COUPON%]</body></html>"),
        placeholder_field(0, "COUPON"),
        ERROR,
        0,
        ("AMP part",),
    ),
    "AMP without AMP markup": (
        draft(amp="<html><body>Hi</body></html>"),
        FIELD_AMP,
        WARNING,
        None,
        ("4email",),
    ),
    "attachments over the warning size": (
        draft(attachments=(Attachment("big.bin", bytes(ATTACHMENT_WARN_BYTES + 1)),)),
        FIELD_ATTACHMENTS,
        WARNING,
        None,
        ("10.0 MiB",),
    ),
    "attachments over the limit": (
        draft(attachments=(Attachment("huge.bin", bytes(ATTACHMENT_MAX_BYTES + 1)),)),
        FIELD_ATTACHMENTS,
        ERROR,
        None,
        ("25.0 MiB", "link"),
    ),
    "the limit is judged on the encoded size (20 MiB raw is 26.7 MiB sent)": (
        draft(attachments=(Attachment("scan.pdf", bytes(20 * 1024 * 1024)),)),
        FIELD_ATTACHMENTS,
        ERROR,
        None,
        ("20.0 MiB", "26.7 MiB once encoded", "25.0 MiB"),
    ),
    "envelope attachments count toward the limit": (
        lambda d: envelope(1, attachments=(Attachment("b.bin", bytes(ATTACHMENT_MAX_BYTES)),))(d),
        FIELD_ATTACHMENTS,
        ERROR,
        None,
        ("25.0 MiB",),
    ),
    "attachment without name": (
        draft(attachments=(Attachment(" ", b"x"),)),
        FIELD_ATTACHMENTS,
        ERROR,
        None,
        ("name",),
    ),
    "empty attachment": (
        draft(attachments=(Attachment("blank.pdf", b""),)),
        FIELD_ATTACHMENTS,
        WARNING,
        None,
        ("blank.pdf", "0 bytes"),
    ),
    "schedule in the past": (draft(schedule=int(NOW) - 60), FIELD_SCHEDULE, ERROR, None, ("past",)),
    "priority on v5.1": (
        draft(priority=1),
        FIELD_PRIORITY,
        WARNING,
        None,
        ("v6", "v5.1", "left out"),
    ),
    "priority out of range": (draft(priority=7), FIELD_PRIORITY, ERROR, None, ("1", "3")),
    "tag with zero-width space": (
        draft(tags=("news\u200bletter",)),
        FIELD_TAGS,
        ERROR,
        None,
        ("U+200B",),
    ),
    "tag with line break": (draft(tags=("a\nb",)), FIELD_TAGS, ERROR, None, ("U+000A",)),
    "empty tag": (draft(tags=("ok", "")), FIELD_TAGS, WARNING, None, ("empty",)),
    "bad header name": (
        envelope(1, headers={"X Campaign": "1"}),
        FIELD_RECIPIENTS,
        ERROR,
        1,
        ("'X Campaign'", "header"),
    ),
    "header value with line break": (
        envelope(0, headers={"X-Campaign": "a\r\nBcc: evil@example.com"}),
        FIELD_RECIPIENTS,
        ERROR,
        0,
        ("line break",),
    ),
    "token too long": (envelope(0, token="nd-" + "a" * 300), FIELD_RECIPIENTS, ERROR, 0, ("255",)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_check_fires_with_its_field_and_severity(name: str) -> None:
    mutate, field, severity, env, words = CASES[name]
    version = ApiVersion.V5_1 if name == "priority on v5.1" else ApiVersion.V6
    problems = check(mutate(clean()), api_version=version)
    found = [p for p in problems if p.field == field and p.severity is severity]
    assert found, f"expected a {severity} on {field}, got {problems}"
    assert any(p.envelope == env for p in found), [p.envelope for p in found]
    problem = next(p for p in found if p.envelope == env)
    for word in words:
        assert word in problem.message, (word, problem.message)
    assert problem.message[0].isupper() or problem.message.startswith("[%"), problem.message
    assert problem.message.rstrip().endswith((".", ")")), problem.message
    assert has_blocking(problems) is any(p.severity is ERROR for p in problems)
    # Nothing unrelated fires: besides the credit info, only this one problem is reported.
    key = parse_field(field).key
    # The same placeholder missing from other envelopes is the same problem, reported per row.
    others = [
        p
        for p in not_info(problems)
        if p is not problem and not (key and parse_field(p.field).key == key)
    ]
    allowed_extra = {"no envelopes", "envelope without to", "empty body"}
    if name not in allowed_extra:
        assert others == [], others


def test_errors_come_first_then_warnings_then_info() -> None:
    d = replace(
        clean(),
        subject="",
        tags=("",),
        envelopes=(*clean().envelopes, Envelope(to=(Address("asha@example.net"),))),
    )
    problems = check(d)
    order = [p.severity for p in problems]
    assert order == sorted(order, key=[ERROR, WARNING, INFO].index)
    assert order[0] is ERROR and order[-1] is INFO


def test_ok_cases_do_not_fire() -> None:
    d = clean()
    assert not not_info(check(replace(d, body="", template_id=55)))
    assert not not_info(check(replace(d, schedule=0)))
    assert not not_info(check(replace(d, priority=None), api_version=ApiVersion.V5))
    assert not not_info(check(replace(d, amp="<!doctype html><html amp4email><body/></html>")))
    # Reserved test domains are how the sandbox rehearses bounces: they are valid addresses.
    assert not not_info(check(envelope(1, to=(Address("x@bounce.invalid"),))(d)))


def test_credit_count_is_info_and_a_warning_when_live_and_large() -> None:
    d = clean()
    assert check(d, live=True)[-1] == Problem(
        FIELD_RECIPIENTS,
        INFO,
        "This send costs 5 credits (one per To, Cc and Bcc address, "
        "with the global Bcc counted once per recipient row).",
    )
    many = replace(
        d,
        body="Hello",
        subject="Hello",
        envelopes=tuple(
            Envelope(to=(Address(f"user{i}@example.net"),)) for i in range(LIVE_CREDIT_WARN + 1)
        ),
        bcc=(),
    )
    live = check(many, live=True)
    assert [(p.field, p.severity) for p in live] == [(FIELD_RECIPIENTS, WARNING)]
    assert "51 credits" in live[0].message and "live" in live[0].message
    test_send = check(many, live=False)
    assert [(p.field, p.severity) for p in test_send] == [(FIELD_RECIPIENTS, INFO)]
    one = replace(many, envelopes=many.envelopes[:1])
    assert check(one)[0].message == "This send costs 1 credit (one per To, Cc and Bcc address)."


def test_more_than_a_thousand_envelopes_warns_about_splitting() -> None:
    d = replace(
        clean(),
        subject="Hi",
        body="Hi",
        bcc=(),
        envelopes=tuple(Envelope(to=(Address(f"u{i}@example.net"),)) for i in range(1001)),
    )
    problems = check(d)
    warning = next(p for p in problems if p.severity is WARNING)
    assert warning.field == FIELD_RECIPIENTS
    assert "1,001 recipient rows" in warning.message and "2 requests" in warning.message
    assert not has_blocking(problems)
    assert "1,001 credits" in problems[-1].message


def test_html_over_gmail_clip_size_warns() -> None:
    d = clean()
    small = render_html(d)
    assert not not_info(check(d, rendered_html=small))
    big = "<p>" + "x" * GMAIL_CLIP_BYTES + "</p>"
    problems = not_info(check(d, rendered_html=big))
    assert [(p.field, p.severity) for p in problems] == [(FIELD_BODY, WARNING)]
    assert "Gmail" in problems[0].message and "103 KB" in problems[0].message


def test_html_size_is_measured_in_bytes_of_the_rendered_body() -> None:
    # 60,000 three-byte characters: 60 k characters but 180 KB once encoded.
    d = replace(clean(), body="€" * 60_000, body_format=BodyFormat.HTML)
    assert [p.field for p in not_info(check(d))] == [FIELD_BODY]
    # Markdown is rendered when no HTML is given: its markup and styles count too.
    rows = "\n".join(f"| cell {i} | value {i} |" for i in range(1400))
    table = replace(clean(), body="| a | b |\n|---|---|\n" + rows)
    assert len(table.body.encode()) < GMAIL_CLIP_BYTES < len(render_html(table).encode())
    assert [p.field for p in not_info(check(table))] == [FIELD_BODY]


def test_filled_in_values_can_push_the_html_over_the_clip_size() -> None:
    html = "<p>" + "x" * (GMAIL_CLIP_BYTES - 2000) + "[%BIO%]</p>"
    d = replace(
        clean(),
        body=html,
        body_format=BodyFormat.HTML,
        envelopes=(
            replace(
                clean().envelopes[0], attributes={"FIRST_NAME": "A", "USER_ID": "1", "BIO": "s"}
            ),
            replace(
                clean().envelopes[1],
                attributes={"FIRST_NAME": "B", "USER_ID": "2", "BIO": "long " * 1000},
            ),
        ),
    )
    assert [p.field for p in not_info(check(d))] == [FIELD_BODY]
    short = replace(d, envelopes=d.envelopes[:1])
    assert not not_info(check(short))


def test_schedule_in_the_future_is_fine_and_in_the_past_names_the_time() -> None:
    assert not not_info(check(replace(clean(), schedule=int(NOW) + 30 * 86400)))
    problem = check(replace(clean(), schedule=int(NOW) - 86400))[0]
    assert problem.field == FIELD_SCHEDULE and "2025-06-" in problem.message


def test_field_names_and_parsing() -> None:
    assert placeholder_field(3, "FIRST_NAME") == "recipients[3].FIRST_NAME"
    assert parse_field("recipients[3].FIRST_NAME") == FieldRef("recipients", 3, "FIRST_NAME")
    assert parse_field("subject") == FieldRef("subject", None, None)
    assert parse_field("recipients") == FieldRef("recipients")
    assert {
        "from", "to", "cc", "bcc", "reply_to", "subject", "body", "amp", "attachments",
        "tags", "schedule", "priority", "template_id", "recipients",
    } == FIELDS  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_every_problem_field_belongs_to_the_vocabulary(name: str) -> None:
    mutate = CASES[name][0]
    for problem in check(mutate(clean())):
        ref = parse_field(problem.field)
        assert ref.name in FIELDS
        if ref.envelope is not None:
            assert ref.envelope == problem.envelope


def test_problems_are_frozen_and_blocking_follows_severity() -> None:
    p = Problem(FIELD_SUBJECT, ERROR, "Add a subject.")
    with pytest.raises(AttributeError):
        p.message = "changed"  # type: ignore[misc]
    assert p.blocking and not Problem(FIELD_SUBJECT, WARNING, "x").blocking
    assert has_blocking([Problem("tags", WARNING, "x"), p])
    assert not has_blocking([Problem("tags", WARNING, "x"), Problem("recipients", INFO, "y")])
    assert not has_blocking([])


def test_checks_are_fast_for_a_typical_draft() -> None:
    d = clean()
    check(d)  # warm up imports and caches
    times = []
    for _ in range(25):
        start = time.perf_counter()
        check(d)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.005, f"median {statistics.median(times) * 1000:.2f} ms"


def test_checks_do_not_cache_across_drafts() -> None:
    d = clean()
    assert not has_blocking(check(d))
    broken = envelope(0, attributes={})(d)
    assert has_blocking(check(broken))
    assert not has_blocking(check(d))
