"""Reading the address lists people paste into To, Cc and Bcc.

A pasted list may come from a spreadsheet column (one per line), an email client
(``"Rao, Asha" <asha@example.net>; tom@example.net``) or a chat (space separated). Each item
keeps its position in the text so the field can underline exactly the invalid ones. This
module has no Qt in it; it lives in ``ui/`` because only the form needs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from netcore_desktop.core.message import Address

_SEPARATORS: Final = frozenset(",;\n\r\t")
_ANGLE_RE: Final = re.compile(r"^(?P<name>.*?)<(?P<email>[^<>]*)>\s*$", re.DOTALL)


@dataclass(frozen=True)
class ParsedAddress:
    """One item of a pasted list, where it was, and what is wrong with it (if anything)."""

    address: Address
    start: int
    end: int
    problem: str | None = None


def _split(text: str) -> list[tuple[int, int]]:
    """Spans of the items in ``text``: split on , ; tabs and newlines outside quotes/<>."""
    spans: list[tuple[int, int]] = []
    start = 0
    quoted = False
    angle = False
    for i, ch in enumerate(text):
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        elif ch in _SEPARATORS and not quoted and not angle:
            spans.append((start, i))
            start = i + 1
    spans.append((start, len(text)))
    out: list[tuple[int, int]] = []
    for s, e in spans:
        chunk = text[s:e]
        if not chunk.strip():
            continue
        # "a@x.org b@y.org" (pasted from chat): several bare addresses separated by spaces.
        words = list(re.finditer(r"\S+", chunk))
        if "<" not in chunk and len(words) > 1 and all("@" in w.group() for w in words):
            out.extend((s + w.start(), s + w.end()) for w in words)
            continue
        lead = len(chunk) - len(chunk.lstrip())
        trail = len(chunk) - len(chunk.rstrip())
        out.append((s + lead, e - trail))
    return out


def _parse_item(item: str) -> Address:
    match = _ANGLE_RE.match(item)
    if match:
        name = match.group("name").strip().strip('"').strip()
        return Address(match.group("email").strip(), name)
    email = item.strip()
    if email.lower().startswith("mailto:"):
        email = email[len("mailto:") :]
    return Address(email)


def parse_address_list(text: str) -> list[ParsedAddress]:
    """Every address in ``text`` with its span and its problem (``None`` when usable)."""
    from netcore_desktop.core.validation import email_problem

    items: list[ParsedAddress] = []
    for start, end in _split(text):
        address = _parse_item(text[start:end])
        items.append(ParsedAddress(address, start, end, email_problem(address.email)))
    return items


def format_address(address: Address) -> str:
    """``Name <email>`` (quoted when the name holds a separator) or just the email."""
    if not address.name:
        return address.email
    name = address.name
    if any(ch in name for ch in ',;<>"'):
        name = '"' + name.replace('"', "'") + '"'
    return f"{name} <{address.email}>"


def format_address_list(addresses: tuple[Address, ...] | list[Address]) -> str:
    """The text a field shows for ``addresses``: comma separated, parseable again."""
    return ", ".join(format_address(a) for a in addresses)
