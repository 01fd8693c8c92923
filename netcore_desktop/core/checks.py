"""Pre-send checks: everything worth saying about a draft before it is sent.

:func:`run_checks` looks at a :class:`~netcore_desktop.core.message.Draft` and returns a list of
:class:`Problem` objects. Each names the form field it concerns (so the window can jump to it),
has a :class:`Severity` (an error blocks sending, a warning asks first, an info just tells) and
a sentence a marketer understands: what is wrong and what to do about it.

The rules come from ``shared/netcore-api.md`` §3-§5. The checks are written so that a draft
with no ERROR builds a request that :func:`netcore_desktop.core.validation.validate_payload`
accepts (the tests hold them to that), but they say more than the validator does: duplicate
addresses, placeholders with no value for one recipient, the credit count, Gmail clipping.

Field names
-----------
``Problem.field`` is one of the ``FIELD_*`` constants below, or, for a placeholder that has no
value for one envelope, ``"recipients[<i>].<KEY>"`` (``i`` is the 0-based envelope index, ``KEY``
the placeholder key), built by :func:`placeholder_field` and read back by :func:`parse_field`.
``Problem.envelope`` is the 0-based envelope index when the problem belongs to one envelope
(an address in its to/cc/bcc, its headers, a placeholder value) and ``None`` for message-level
fields; so ``field="bcc", envelope=None`` is the global Bcc and ``field="bcc", envelope=2`` the
Bcc of the third envelope.
"""

from __future__ import annotations

import logging
import math
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, NamedTuple

from netcore_desktop.core.contract import (
    ATTACHMENT_MAX_BYTES,
    ATTACHMENT_WARN_BYTES,
    GMAIL_CLIP_BYTES,
    MAX_ENVELOPES_PER_REQUEST,
    PLACEHOLDER_RE,
    PRIORITY_VALUES,
    TOKEN_MAX_LEN,
    ApiVersion,
    encoded_size,
)
from netcore_desktop.core.message import Address, Attachment, Draft
from netcore_desktop.core.render import find_placeholders, render_html
from netcore_desktop.core.validation import email_problem

logger = logging.getLogger(__name__)


class Severity(StrEnum):
    """How much a problem matters."""

    #: Sending is blocked until it is fixed.
    ERROR = "error"
    #: Sending asks for confirmation first.
    WARNING = "warning"
    #: Just information (for example the credit count).
    INFO = "info"


_SEVERITY_ORDER: Final = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}

# --- the field vocabulary the window maps to its form fields -------------------------------

FIELD_FROM: Final = "from"
FIELD_TO: Final = "to"
FIELD_CC: Final = "cc"
FIELD_BCC: Final = "bcc"
FIELD_REPLY_TO: Final = "reply_to"
FIELD_SUBJECT: Final = "subject"
FIELD_BODY: Final = "body"
FIELD_AMP: Final = "amp"
FIELD_ATTACHMENTS: Final = "attachments"
FIELD_TAGS: Final = "tags"
FIELD_SCHEDULE: Final = "schedule"
FIELD_PRIORITY: Final = "priority"
FIELD_TEMPLATE_ID: Final = "template_id"
#: The test-recipients table (one row per envelope).
FIELD_RECIPIENTS: Final = "recipients"

#: Every plain field name a :class:`Problem` can carry (besides ``recipients[i].KEY``).
FIELDS: Final = frozenset(
    {
        FIELD_FROM,
        FIELD_TO,
        FIELD_CC,
        FIELD_BCC,
        FIELD_REPLY_TO,
        FIELD_SUBJECT,
        FIELD_BODY,
        FIELD_AMP,
        FIELD_ATTACHMENTS,
        FIELD_TAGS,
        FIELD_SCHEDULE,
        FIELD_PRIORITY,
        FIELD_TEMPLATE_ID,
        FIELD_RECIPIENTS,
    }
)

#: A live send costing more credits than this is a warning rather than an info.
LIVE_CREDIT_WARN: Final = 50

_PLACEHOLDER_FIELD_RE: Final = re.compile(r"^recipients\[(\d+)\]\.([A-Za-z0-9_]+)$")
# A header name is printable ASCII without a colon or space (RFC 5322 §2.2), as in validation.
_HEADER_NAME_RE: Final = re.compile(r"^[!-9;-~]+$")


@dataclass(frozen=True)
class Problem:
    """One thing worth saying about a draft before it is sent."""

    #: A ``FIELD_*`` constant, or ``recipients[i].KEY`` (see :func:`parse_field`).
    field: str
    severity: Severity
    #: A sentence for the person: what is wrong and what to do.
    message: str
    #: 0-based envelope index when the problem belongs to one envelope, else ``None``.
    envelope: int | None = None

    @property
    def blocking(self) -> bool:
        """Whether this problem stops the send."""
        return self.severity is Severity.ERROR


class FieldRef(NamedTuple):
    """A :attr:`Problem.field` taken apart by :func:`parse_field`."""

    #: One of :data:`FIELDS` (``recipients`` for a placeholder field).
    name: str
    #: The envelope index written in the field, if any.
    envelope: int | None = None
    #: The placeholder key written in the field, if any.
    key: str | None = None


def placeholder_field(envelope: int, key: str) -> str:
    """The field name of a placeholder ``key`` of envelope ``envelope``: ``recipients[i].KEY``."""
    return f"{FIELD_RECIPIENTS}[{envelope}].{key}"


def parse_field(field: str) -> FieldRef:
    """Split a problem's field into its form field, envelope index and placeholder key.

    ``"recipients[2].FIRST_NAME"`` gives ``FieldRef("recipients", 2, "FIRST_NAME")``;
    a plain name such as ``"subject"`` gives ``FieldRef("subject")``.
    """
    match = _PLACEHOLDER_FIELD_RE.match(field)
    if match:
        return FieldRef(FIELD_RECIPIENTS, int(match.group(1)), match.group(2))
    return FieldRef(field)


def has_blocking(problems: Iterable[Problem]) -> bool:
    """Whether any problem is an ERROR (sending must wait until it is fixed)."""
    return any(p.severity is Severity.ERROR for p in problems)


# --- wording helpers --------------------------------------------------------------------------

_KIND_LABELS: Final = {FIELD_TO: "To", FIELD_CC: "Cc", FIELD_BCC: "Bcc"}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    return f"{math.ceil(n / 1024)} KB"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


class _Ctx:
    """Shared state of one :func:`run_checks` call."""

    def __init__(self, draft: Draft) -> None:
        self.draft = draft
        self.problems: list[Problem] = []
        self.single = len(draft.envelopes) == 1

    def add(self, field: str, severity: Severity, message: str, env: int | None = None) -> None:
        self.problems.append(Problem(field, severity, message, env))

    def where(self, i: int) -> str:
        """How a person recognises envelope ``i``: its row and first address."""
        if self.single:
            return "the recipient"
        env = self.draft.envelopes[i]
        first = next((a.email for a in env.to if a.email.strip()), "")
        return f"recipient row {i + 1}" + (f" ({first})" if first else "")

    def place(self, kind: str, i: int | None) -> str:
        """``To`` / ``Cc of recipient row 2`` / ``the global Bcc``."""
        label = _KIND_LABELS[kind]
        if i is None:
            return "the global Bcc"
        return label if self.single else f"{label} of recipient row {i + 1}"


# --- the checks ------------------------------------------------------------------------------


def _check_sender(ctx: _Ctx) -> None:
    email = ctx.draft.sender.email
    if not email.strip():
        ctx.add(
            FIELD_FROM,
            Severity.ERROR,
            "Add the sender address (From). Its domain must be verified on your Netcore account.",
        )
    else:
        problem = email_problem(email)
        if problem:
            ctx.add(FIELD_FROM, Severity.ERROR, f"The sender address is not usable: {problem}")
    reply_to = ctx.draft.reply_to
    if reply_to:
        problem = email_problem(reply_to)
        if problem:
            ctx.add(
                FIELD_REPLY_TO,
                Severity.ERROR,
                f"The Reply-To address is not usable: {problem} Correct it or clear the field.",
            )


def _check_addresses(ctx: _Ctx) -> None:
    """Missing recipients, invalid addresses, and duplicates within and across envelopes."""
    draft = ctx.draft
    if not draft.envelopes:
        ctx.add(FIELD_TO, Severity.ERROR, "Add at least one recipient in To.")
    # First place each address was seen: normalised email -> (kind, envelope index).
    seen: dict[str, tuple[str, int | None]] = {}

    def visit(kind: str, i: int | None, addr: Address) -> None:
        email = addr.email
        if not email.strip():
            ctx.add(
                kind,
                Severity.ERROR,
                f"{_cap(ctx.place(kind, i))} has an empty address: fill it in or remove it.",
                i,
            )
            return
        problem = email_problem(email)
        if problem:
            ctx.add(
                kind,
                Severity.ERROR,
                f"{_cap(ctx.place(kind, i))}: {problem} Correct or remove it.",
                i,
            )
            return
        key = email.lower()
        first = seen.get(key)
        if first is None:
            seen[key] = (kind, i)
            return
        first_kind, first_env = first
        if first_env == i:
            ctx.add(
                kind,
                Severity.WARNING,
                f"The address {email} is listed twice in {_where_phrase(ctx, i)} (also in "
                f"{_KIND_LABELS[first_kind]}): it costs a credit each time. Remove the extra one.",
                i,
            )
        else:
            ctx.add(
                kind,
                Severity.WARNING,
                f"The address {email} in {ctx.place(kind, i)} is also in "
                f"{ctx.place(first_kind, first_env)}: "
                "they will get the message more than once, and each copy costs a credit.",
                i,
            )

    for i, env in enumerate(draft.envelopes):
        if not env.to:
            ctx.add(
                FIELD_TO,
                Severity.ERROR,
                "Add at least one To address."
                if ctx.single
                else f"Recipient row {i + 1} has no To address: add one or remove the row.",
                i,
            )
        for kind, items in ((FIELD_TO, env.to), (FIELD_CC, env.cc), (FIELD_BCC, env.bcc)):
            for addr in items:
                visit(kind, i, addr)
    for addr in draft.bcc:
        visit(FIELD_BCC, None, addr)


def _where_phrase(ctx: _Ctx, i: int | None) -> str:
    if i is None:
        return "the global Bcc"
    return "the recipients" if ctx.single else f"recipient row {i + 1}"


def _check_content(ctx: _Ctx) -> None:
    draft = ctx.draft
    if not draft.subject.strip():
        ctx.add(FIELD_SUBJECT, Severity.ERROR, "Add a subject: Netcore refuses mail without one.")
    elif "\n" in draft.subject or "\r" in draft.subject:
        ctx.add(
            FIELD_SUBJECT,
            Severity.WARNING,
            "The subject contains a line break; inboxes show it on one line. Remove the break.",
        )
    if draft.template_id is not None and draft.template_id <= 0:
        ctx.add(
            FIELD_TEMPLATE_ID,
            Severity.ERROR,
            "The template id must be a positive number: pick the template again or clear it.",
        )
    if not draft.body.strip() and draft.template_id is None:
        ctx.add(
            FIELD_BODY,
            Severity.ERROR,
            "The message is empty: write the body, or choose a stored template.",
        )
    amp = draft.amp.strip()
    if amp and "4email" not in amp[:2000].lower():
        # AMP for Email documents start with <html ⚡4email> (or <html amp4email>); without
        # it every mail client ignores the part and shows the HTML body instead.
        ctx.add(
            FIELD_AMP,
            Severity.WARNING,
            "The AMP part does not start with <html ⚡4email>, so mail clients will ignore it "
            "and show the HTML body. Fix the AMP markup or clear it.",
        )


def _check_placeholders(ctx: _Ctx) -> None:
    """Every ``[%KEY%]`` in subject, body and AMP needs a value in every envelope."""
    draft = ctx.draft
    places: dict[str, list[str]] = {}
    for label, text in (("subject", draft.subject), ("body", draft.body), ("AMP part", draft.amp)):
        for key in find_placeholders(text):
            places.setdefault(key, []).append(label)
    if not places:
        return
    for i, env in enumerate(draft.envelopes):
        attributes = env.attributes
        for key, where in places.items():
            value = attributes.get(key)
            used = " and ".join(where)
            if value is None:
                ctx.add(
                    placeholder_field(i, key),
                    Severity.ERROR,
                    f"[%{key}%] (in the {used}) has no value for {ctx.where(i)}: Netcore would "
                    f'send it as it is, e.g. "Hi [%{key}%]". Add a value for {key} for this '
                    "recipient, or remove the placeholder.",
                    i,
                )
            elif not value.strip():
                ctx.add(
                    placeholder_field(i, key),
                    Severity.WARNING,
                    f"[%{key}%] (in the {used}) is empty for {ctx.where(i)}: the message will "
                    "show nothing there. Fill in the value if that is not intended.",
                    i,
                )


def _check_attachments(ctx: _Ctx) -> None:
    draft = ctx.draft
    total = draft.attachment_bytes()
    # The limits apply to the attachments as they travel: base64 makes every 3 bytes 4. Judged
    # on raw bytes, a 25 MiB file becomes a 33 MiB request, which the service refuses.
    encoded = encoded_size(total)
    if encoded > ATTACHMENT_MAX_BYTES:
        ctx.add(
            FIELD_ATTACHMENTS,
            Severity.ERROR,
            f"The attachments add up to {_size(total)} ({_size(encoded)} once encoded for "
            f"sending), over the {_size(ATTACHMENT_MAX_BYTES)} limit. Remove some, or share "
            "large files as a link.",
        )
    elif encoded > ATTACHMENT_WARN_BYTES:
        ctx.add(
            FIELD_ATTACHMENTS,
            Severity.WARNING,
            f"The attachments add up to {_size(total)} ({_size(encoded)} once encoded for "
            f"sending): above {_size(ATTACHMENT_WARN_BYTES)} many mail servers refuse the "
            "message. Consider sharing them as a link.",
        )
    groups: list[tuple[str, int | None, Sequence[Attachment]]] = [
        (FIELD_ATTACHMENTS, None, draft.attachments)
    ]
    groups += [(FIELD_RECIPIENTS, i, e.attachments) for i, e in enumerate(draft.envelopes)]
    for field, i, items in groups:
        for att in items:
            if not att.name.strip():
                ctx.add(field, Severity.ERROR, "An attachment has no file name: give it one.", i)
            elif not att.data:
                ctx.add(
                    field,
                    Severity.WARNING,
                    f"The attachment {att.name} is empty (0 bytes): attach the right file.",
                    i,
                )


def _check_volume(ctx: _Ctx, live: bool) -> None:
    draft = ctx.draft
    count = len(draft.envelopes)
    if count > MAX_ENVELOPES_PER_REQUEST:
        parts = math.ceil(count / MAX_ENVELOPES_PER_REQUEST)
        ctx.add(
            FIELD_RECIPIENTS,
            Severity.WARNING,
            f"There are {count:,} recipient rows: they will be sent as {parts} requests of "
            f"at most {MAX_ENVELOPES_PER_REQUEST:,} each.",
        )
    credits = draft.credit_count()
    if not credits:
        return
    detail = "one per To, Cc and Bcc address"
    if draft.bcc and count > 1:
        detail += ", with the global Bcc counted once per recipient row"
    if live and credits > LIVE_CREDIT_WARN:
        ctx.add(
            FIELD_RECIPIENTS,
            Severity.WARNING,
            f"This live send costs {_plural(credits, 'credit')} ({detail}), even for addresses "
            "that bounce. Check the recipient list before sending.",
        )
    else:
        ctx.add(
            FIELD_RECIPIENTS,
            Severity.INFO,
            f"This send costs {_plural(credits, 'credit')} ({detail}).",
        )


def _check_html_size(ctx: _Ctx, rendered_html: str | None) -> None:
    draft = ctx.draft
    if rendered_html is None:
        if not draft.body.strip():
            return
        rendered_html = render_html(draft)
    size = len(rendered_html.encode("utf-8"))
    # The filled-in values change the size: find the largest message any envelope gets.
    counts: dict[str, int] = {}
    for match in PLACEHOLDER_RE.finditer(rendered_html):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
    growth = 0
    for env in draft.envelopes:
        delta = 0
        for key, n in counts.items():
            value = env.attributes.get(key)
            if value is not None:
                delta += n * (len(value.encode("utf-8")) - len(key) - 4)
        growth = max(growth, delta)
    largest = size + growth
    if largest > GMAIL_CLIP_BYTES:
        ctx.add(
            FIELD_BODY,
            Severity.WARNING,
            f"The HTML body is {_size(largest)}: Gmail clips messages over "
            f"{_size(GMAIL_CLIP_BYTES)} behind a \"View entire message\" link, hiding the end "
            "(and the open-tracking pixel). Shorten it or move content to a web page.",
        )


def _when(epoch: int) -> str:
    try:
        return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")
    except (OverflowError, OSError, ValueError):
        return f"Unix time {epoch}"


def _check_schedule(ctx: _Ctx, now: float) -> None:
    schedule = ctx.draft.schedule
    # 0 means "send now" (contract §3). No documented upper limit for Netcore was found,
    # so a far-away time is not questioned.
    if schedule and schedule < now:
        ctx.add(
            FIELD_SCHEDULE,
            Severity.ERROR,
            f"The scheduled time ({_when(schedule)}) is in the past: pick a later time, "
            "or clear it to send now.",
        )


def _check_priority(ctx: _Ctx, api_version: ApiVersion) -> None:
    priority = ctx.draft.priority
    if priority is None:
        return
    if api_version is not ApiVersion.V6:
        ctx.add(
            FIELD_PRIORITY,
            Severity.WARNING,
            f"Priority is only sent with the v6 API; this profile uses {api_version}, "
            "so it will be left out.",
        )
    elif priority not in PRIORITY_VALUES:
        ctx.add(
            FIELD_PRIORITY,
            Severity.ERROR,
            "Priority must be 1 (transactional/OTP), 2 (triggered) or 3 (promotional).",
        )


def _invisible(text: str) -> str | None:
    """The first non-printing character of ``text``, described, or ``None``."""
    for ch in text:
        if not ch.isprintable():
            name = unicodedata.name(ch, "control character")
            return f"U+{ord(ch):04X} {name.lower()}"
    return None


def _check_tags(ctx: _Ctx) -> None:
    for tag in ctx.draft.tags:
        if not tag.strip():
            ctx.add(FIELD_TAGS, Severity.WARNING, "One tag is empty: remove it.")
            continue
        bad = _invisible(tag)
        if bad:
            ctx.add(
                FIELD_TAGS,
                Severity.ERROR,
                f"The tag {tag!r} contains an invisible character ({bad}): retype the tag, "
                "otherwise reports list it apart from the tag it looks like.",
            )


def _check_envelope_extras(ctx: _Ctx) -> None:
    """Per-envelope headers and correlation tokens."""
    for i, env in enumerate(ctx.draft.envelopes):
        for name, value in env.headers.items():
            if not _HEADER_NAME_RE.match(name):
                ctx.add(
                    FIELD_RECIPIENTS,
                    Severity.ERROR,
                    f"The header name {name!r} for {ctx.where(i)} is not valid: use letters, "
                    "digits and dashes only (no spaces, colons or accents).",
                    i,
                )
            elif "\n" in value or "\r" in value:
                ctx.add(
                    FIELD_RECIPIENTS,
                    Severity.ERROR,
                    f"The {name} header for {ctx.where(i)} contains a line break: "
                    "put the value on one line.",
                    i,
                )
        if len(env.token) > TOKEN_MAX_LEN:
            ctx.add(
                FIELD_RECIPIENTS,
                Severity.ERROR,
                f"The tracking token of {ctx.where(i)} is longer than {TOKEN_MAX_LEN} "
                "characters: it will be replaced by a fresh one if you clear it.",
                i,
            )


def run_checks(
    draft: Draft,
    *,
    api_version: ApiVersion = ApiVersion.V6,
    live: bool = False,
    rendered_html: str | None = None,
    now: float | None = None,
) -> list[Problem]:
    """Every problem with ``draft``, errors first, then warnings, then information.

    ``live`` says the send goes to the real service (credits are spent), so a large credit
    count becomes a warning. ``rendered_html`` is the body as already rendered by
    :func:`netcore_desktop.core.render.render_html` (pass it when you have it, so the draft
    is not rendered twice); ``now`` (Unix seconds) defaults to the current time.
    """
    started = time.perf_counter()
    ctx = _Ctx(draft)
    _check_sender(ctx)
    _check_addresses(ctx)
    _check_content(ctx)
    _check_placeholders(ctx)
    _check_attachments(ctx)
    _check_volume(ctx, live)
    _check_html_size(ctx, rendered_html)
    _check_schedule(ctx, time.time() if now is None else now)
    _check_priority(ctx, api_version)
    _check_tags(ctx)
    _check_envelope_extras(ctx)
    problems = sorted(ctx.problems, key=lambda p: _SEVERITY_ORDER[p.severity])
    logger.debug(
        "checks: %d problems in %.2f ms", len(problems), (time.perf_counter() - started) * 1000
    )
    return problems
