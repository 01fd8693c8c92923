"""Hypothesis strategies for drafts: valid ones (what a careful person composes) and messy ones
(anything the form or a damaged draft file could hold)."""

from __future__ import annotations

import string

from hypothesis import strategies as st

from netcore_desktop.core.contract import PLACEHOLDER_RE
from netcore_desktop.core.message import (
    Address,
    Attachment,
    BodyFormat,
    Draft,
    Envelope,
    TrackingSettings,
)
from netcore_desktop.core.validation import email_problem

#: The fixed "now" the property tests check schedules against.
NOW = 1_750_000_000

# Text a person could type: anything but surrogates (which no keyboard produces).
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
nonblank_text = any_text.filter(lambda s: bool(s.strip()))
# One line of printable text (subjects, tags, header values).
line_text = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp", "Co", "Cn")),
    min_size=1,
    max_size=40,
).filter(lambda s: bool(s.strip()) and s.isprintable() and not PLACEHOLDER_RE.search(s))

emails = st.emails().filter(lambda e: email_problem(e) is None)
addresses = st.builds(Address, emails, st.one_of(st.just(""), any_text))
keys = st.from_regex(r"[A-Z][A-Z0-9_]{0,11}", fullmatch=True)
header_names = st.from_regex(r"X-[A-Za-z0-9][A-Za-z0-9-]{0,15}", fullmatch=True)
settings_strategy = st.builds(
    TrackingSettings,
    open_track=st.none() | st.booleans(),
    click_track=st.none() | st.booleans(),
    unsubscribe_track=st.none() | st.booleans(),
    footer=st.none() | st.booleans(),
    ippool=st.just("") | st.from_regex(r"[a-z][a-z0-9-]{0,15}", fullmatch=True),
)
attachments = st.lists(
    st.builds(Attachment, line_text, st.binary(min_size=1, max_size=512)), max_size=3
)
WORD = st.text(string.ascii_letters + string.digits + "éü中", min_size=1, max_size=10)


@st.composite
def markdown_bodies(draw: st.DrawFn, placeholder_keys: list[str]) -> str:
    """A Markdown body built from the blocks people write, with placeholders sprinkled in."""
    phs = [f"[%{k}%]" for k in placeholder_keys]
    inline = st.one_of(WORD, WORD.map(lambda w: f"**{w}**"), WORD.map(lambda w: f"_{w}_"))
    if phs:
        inline = inline | st.sampled_from(phs)

    def sentence() -> str:
        return " ".join(draw(st.lists(inline, min_size=1, max_size=8)))

    blocks: list[str] = []
    for kind in draw(
        st.lists(
            st.sampled_from(["p", "h", "ul", "ol", "table", "code", "link", "img", "quote"]),
            min_size=1,
            max_size=6,
        )
    ):
        if kind == "p":
            blocks.append(sentence())
        elif kind == "h":
            blocks.append("#" * draw(st.integers(1, 3)) + " " + sentence())
        elif kind in ("ul", "ol"):
            items = [sentence() for _ in range(draw(st.integers(1, 4)))]
            marks = ["-"] * len(items) if kind == "ul" else [f"{i + 1}." for i in range(len(items))]
            blocks.append("\n".join(f"{m} {t}" for m, t in zip(marks, items, strict=True)))
        elif kind == "table":
            cols = draw(st.integers(1, 3))
            rows = [[sentence() for _ in range(cols)] for _ in range(draw(st.integers(1, 3)))]
            head = "| " + " | ".join(f"H{c}" for c in range(cols)) + " |"
            rule = "|" + "---|" * cols
            blocks.append("\n".join([head, rule] + ["| " + " | ".join(r) + " |" for r in rows]))
        elif kind == "code":
            blocks.append(
                "```\n" + draw(WORD) + " = " + draw(st.sampled_from(phs or ["1"])) + "\n```"
            )
        elif kind == "link":
            target = draw(st.sampled_from(phs)) if phs and draw(st.booleans()) else draw(WORD)
            blocks.append(f"[{sentence()}](https://example.com/{target}?a=1&b=2)")
        elif kind == "img":
            blocks.append(f"![{draw(WORD)}](https://img.example.com/{draw(WORD)}.png)")
        else:
            blocks.append("> " + sentence())
    return "\n\n".join(blocks)


@st.composite
def valid_drafts(draw: st.DrawFn, max_envelopes: int = 5) -> Draft:
    """A draft a careful person would send: run_checks finds no error in it."""
    placeholder_keys = draw(st.lists(keys, max_size=4, unique=True))
    phs = [f"[%{k}%]" for k in placeholder_keys]
    subject = draw(line_text)
    if phs and draw(st.booleans()):
        subject += " " + draw(st.sampled_from(phs))
    template_id = draw(st.none() | st.integers(1, 10**9))
    body_format = draw(st.sampled_from(BodyFormat))
    if template_id is not None and draw(st.booleans()):
        body = ""
    elif body_format is BodyFormat.MARKDOWN:
        body = draw(markdown_bodies(placeholder_keys))
    else:
        body = "<p>" + " ".join(draw(st.lists(WORD | st.sampled_from(phs or ["x"]), min_size=1)))
        body += "</p>"
    amp = ""
    if draw(st.booleans()):
        amp = "<!doctype html><html ⚡4email><body>" + draw(WORD) + "</body></html>"

    def envelope() -> Envelope:
        attributes = {k: draw(nonblank_text) for k in placeholder_keys}
        attributes.update(draw(st.dictionaries(keys, any_text, max_size=2)))
        return Envelope(
            to=tuple(draw(st.lists(addresses, min_size=1, max_size=3))),
            cc=tuple(draw(st.lists(addresses, max_size=2))),
            bcc=tuple(draw(st.lists(addresses, max_size=2))),
            attributes=attributes,
            headers=draw(st.dictionaries(header_names, line_text, max_size=2)),
            attachments=tuple(draw(attachments if draw(st.booleans()) else st.just([]))),
        )

    return Draft(
        sender=draw(addresses),
        subject=subject,
        body=body,
        body_format=body_format,
        amp=amp,
        envelopes=tuple(envelope() for _ in range(draw(st.integers(1, max_envelopes)))),
        reply_to=draw(st.just("") | emails),
        attachments=tuple(draw(attachments)),
        tags=tuple(draw(st.lists(line_text, max_size=3))),
        settings=draw(settings_strategy),
        schedule=draw(st.just(0) | st.integers(NOW + 60, NOW + 10**8)),
        bcc=tuple(draw(st.lists(addresses, max_size=2))),
        priority=draw(st.none() | st.sampled_from([1, 2, 3])),
        template_id=template_id,
    )


# --- messy drafts: anything at all in every field ---------------------------------------------

messy_email = st.one_of(emails, any_text, st.just(""), st.just("a@b"), st.just("x@bounce.invalid"))
messy_address = st.builds(Address, messy_email, any_text)
messy_text = st.one_of(any_text, st.text(max_size=200), st.just(""), st.just("Hi [%NAME%]"))


@st.composite
def messy_drafts(draw: st.DrawFn) -> Draft:
    """Any draft the form or a damaged draft file could hold."""

    def envelope() -> Envelope:
        return Envelope(
            to=tuple(draw(st.lists(messy_address, max_size=2))),
            cc=tuple(draw(st.lists(messy_address, max_size=2))),
            bcc=tuple(draw(st.lists(messy_address, max_size=1))),
            attributes=draw(st.dictionaries(st.just("NAME") | any_text, any_text, max_size=3)),
            headers=draw(st.dictionaries(any_text | header_names, any_text, max_size=2)),
            attachments=tuple(
                draw(st.lists(st.builds(Attachment, any_text, st.binary(max_size=64)), max_size=2))
            ),
            token=draw(st.just("") | st.text(max_size=300)),
        )

    return Draft(
        sender=draw(messy_address),
        subject=draw(messy_text),
        body=draw(messy_text),
        body_format=draw(st.sampled_from(BodyFormat)),
        amp=draw(st.just("") | messy_text),
        envelopes=tuple(envelope() for _ in range(draw(st.integers(0, 3)))),
        reply_to=draw(st.just("") | messy_email),
        attachments=tuple(
            draw(st.lists(st.builds(Attachment, any_text, st.binary(max_size=64)), max_size=2))
        ),
        tags=tuple(draw(st.lists(any_text, max_size=3))),
        settings=draw(
            st.builds(
                TrackingSettings,
                open_track=st.none() | st.booleans(),
                click_track=st.none() | st.booleans(),
                ippool=any_text,
            )
        ),
        schedule=draw(st.integers(-(10**10), 10**12) | st.just(0)),
        bcc=tuple(draw(st.lists(messy_address, max_size=2))),
        priority=draw(st.none() | st.integers(-5, 10)),
        template_id=draw(st.none() | st.integers(-5, 10**12)),
    )
