"""The draft model and the Netcore request body built from it.

A :class:`Draft` holds every field of the send-mail body (``shared/netcore-api.md`` §3).
:func:`build_payload` turns it into the exact JSON object for a given API generation; the
HTML it carries comes from :func:`netcore_desktop.core.render.render_html`, the same function
the preview uses. Everything here is immutable, so a draft can be handed to a worker thread
as it is.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from netcore_desktop.core.contract import TOKEN_PREFIX, ApiVersion


class BodyFormat(StrEnum):
    """How the body source is written."""

    MARKDOWN = "markdown"
    HTML = "html"


@dataclass(frozen=True)
class Address:
    """An email address with an optional display name."""

    email: str
    name: str = ""

    def to_json(self) -> dict[str, str]:
        """The ``{"email", "name"?}`` object of the contract."""
        out = {"email": self.email}
        if self.name:
            out["name"] = self.name
        return out

    def display(self) -> str:
        """``Name <email>`` or just the email."""
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True)
class Attachment:
    """A file attached to the message (name plus raw bytes)."""

    name: str
    data: bytes

    @property
    def size(self) -> int:
        """Size of the raw bytes."""
        return len(self.data)

    def to_json(self) -> dict[str, str]:
        """The ``{"name", "content": base64}`` object of the contract."""
        return {"name": self.name, "content": base64.b64encode(self.data).decode("ascii")}


@dataclass(frozen=True)
class Envelope:
    """One ``personalizations[]`` element: a recipient group with its own values."""

    to: tuple[Address, ...]
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    #: Correlation token (``nd-<uuid4 hex>``); empty until :func:`with_fresh_tokens`.
    token: str = ""

    def addresses(self) -> tuple[Address, ...]:
        """Every to, cc and bcc address of this envelope."""
        return self.to + self.cc + self.bcc


@dataclass(frozen=True)
class TrackingSettings:
    """The ``settings`` object; ``None`` leaves a switch at the account's default."""

    open_track: bool | None = None
    click_track: bool | None = None
    unsubscribe_track: bool | None = None
    footer: bool | None = None
    ippool: str = ""

    def to_json(self) -> dict[str, Any]:
        """Only the switches that were set."""
        out: dict[str, Any] = {}
        for key in ("open_track", "click_track", "unsubscribe_track", "footer"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.ippool:
            out["ippool"] = self.ippool
        return out


@dataclass(frozen=True)
class Draft:
    """Everything a person composes for one send (contract §3)."""

    sender: Address = Address("")
    subject: str = ""
    body: str = ""
    body_format: BodyFormat = BodyFormat.MARKDOWN
    amp: str = ""
    envelopes: tuple[Envelope, ...] = ()
    reply_to: str = ""
    attachments: tuple[Attachment, ...] = ()
    tags: tuple[str, ...] = ()
    settings: TrackingSettings = TrackingSettings()
    #: Unix epoch seconds; 0 sends now.
    schedule: int = 0
    bcc: tuple[Address, ...] = ()
    #: ``priorityflag`` 1, 2 or 3 (v6 only); ``None`` leaves it out.
    priority: int | None = None
    template_id: int | None = None

    def recipients(self) -> list[Address]:
        """Every to, cc and bcc address over all envelopes, plus the global bcc."""
        out: list[Address] = []
        for env in self.envelopes:
            out.extend(env.addresses())
        out.extend(self.bcc)
        return out

    def credit_count(self) -> int:
        """Credits this send costs: one per to, cc and bcc address (contract §5).

        The global bcc is copied into every envelope, so it costs once per envelope.
        """
        per_envelope = sum(len(env.addresses()) for env in self.envelopes)
        return per_envelope + len(self.bcc) * len(self.envelopes)

    def attachment_bytes(self) -> int:
        """Total raw size of message-level and per-envelope attachments."""
        total = sum(a.size for a in self.attachments)
        total += sum(a.size for env in self.envelopes for a in env.attachments)
        return total


def new_token() -> str:
    """A fresh correlation token, ``nd-<uuid4 hex>`` (contract §3)."""
    return TOKEN_PREFIX + uuid.uuid4().hex


def with_fresh_tokens(draft: Draft) -> Draft:
    """A copy of ``draft`` whose every envelope carries a new correlation token."""
    return replace(draft, envelopes=tuple(replace(e, token=new_token()) for e in draft.envelopes))


def _addresses(items: Iterable[Address]) -> list[dict[str, str]]:
    return [a.to_json() for a in items]


def _envelope_json(env: Envelope) -> dict[str, Any]:
    out: dict[str, Any] = {"to": _addresses(env.to)}
    if env.cc:
        out["cc"] = _addresses(env.cc)
    if env.bcc:
        out["bcc"] = _addresses(env.bcc)
    if env.attributes:
        out["attributes"] = dict(env.attributes)
    if env.headers:
        out["headers"] = dict(env.headers)
    if env.attachments:
        out["attachments"] = [a.to_json() for a in env.attachments]
    if env.token:
        out["token_to"] = env.token
        if env.cc:
            out["token_cc"] = env.token
        if env.bcc:
            out["token_bcc"] = env.token
    return out


def build_payload(
    draft: Draft, api_version: ApiVersion = ApiVersion.V6, html: str | None = None
) -> dict[str, Any]:
    """The send-mail JSON object for ``draft`` (contract §3).

    ``html`` is the rendered body; when omitted it is rendered here with
    :func:`netcore_desktop.core.render.render_html`, the function the preview uses, so the
    preview and the request can never disagree. The result depends only on its inputs.
    """
    from netcore_desktop.core.render import render_html

    payload: dict[str, Any] = {"from": draft.sender.to_json(), "subject": draft.subject}
    if draft.body.strip() or draft.template_id is None:
        body_html = render_html(draft) if html is None else html
        content = [{"type": "html", "value": body_html}]
        if draft.amp.strip():
            content.append({"type": "amp", "value": draft.amp})
        payload["content"] = content
    payload["personalizations"] = [_envelope_json(e) for e in draft.envelopes]
    if draft.reply_to:
        if api_version is ApiVersion.V6:
            payload["reply_to"] = [{"email": draft.reply_to}]
        else:
            payload["reply_to"] = draft.reply_to
    if draft.template_id is not None:
        payload["template_id"] = draft.template_id
    if draft.attachments:
        payload["attachments"] = [a.to_json() for a in draft.attachments]
    settings = draft.settings.to_json()
    if settings:
        payload["settings"] = settings
    if draft.tags:
        payload["tags"] = list(draft.tags)
    if draft.schedule:
        payload["schedule"] = draft.schedule
    if draft.bcc:
        payload["bcc"] = [{"email": a.email} for a in draft.bcc]
    if draft.priority is not None and api_version is ApiVersion.V6:
        payload["priorityflag"] = draft.priority
    return payload


def payload_bytes(payload: Mapping[str, Any]) -> bytes:
    """The exact bytes sent on the wire: compact UTF-8 JSON.

    A lone surrogate (possible in text read from a damaged draft file) has no UTF-8 form; it
    is sent as U+FFFD, the replacement character, as browsers do, instead of failing the send.
    """
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")


# --- serialisation for draft files and history -------------------------------------------


def _addr_list(items: Iterable[Address]) -> list[dict[str, str]]:
    return [{"email": a.email, "name": a.name} for a in items]


def _attachment_list(items: Iterable[Attachment]) -> list[dict[str, str]]:
    return [{"name": a.name, "content": base64.b64encode(a.data).decode("ascii")} for a in items]


def draft_to_dict(draft: Draft) -> dict[str, Any]:
    """A JSON-ready dict holding the whole draft, Markdown source included."""
    s = draft.settings
    return {
        "format": "netcore-desktop-draft",
        "version": 1,
        "sender": {"email": draft.sender.email, "name": draft.sender.name},
        "subject": draft.subject,
        "body": draft.body,
        "body_format": str(draft.body_format),
        "amp": draft.amp,
        "reply_to": draft.reply_to,
        "envelopes": [
            {
                "to": _addr_list(e.to),
                "cc": _addr_list(e.cc),
                "bcc": _addr_list(e.bcc),
                "attributes": dict(e.attributes),
                "headers": dict(e.headers),
                "attachments": _attachment_list(e.attachments),
                "token": e.token,
            }
            for e in draft.envelopes
        ],
        "attachments": _attachment_list(draft.attachments),
        "tags": list(draft.tags),
        "settings": {
            "open_track": s.open_track,
            "click_track": s.click_track,
            "unsubscribe_track": s.unsubscribe_track,
            "footer": s.footer,
            "ippool": s.ippool,
        },
        "schedule": draft.schedule,
        "bcc": _addr_list(draft.bcc),
        "priority": draft.priority,
        "template_id": draft.template_id,
    }


def _addrs_from(items: Any) -> tuple[Address, ...]:
    return tuple(
        Address(str(i.get("email", "")), str(i.get("name", "") or "")) for i in items or []
    )


def _attachments_from(items: Any) -> tuple[Attachment, ...]:
    return tuple(
        Attachment(str(i["name"]), base64.b64decode(str(i.get("content", "")))) for i in items or []
    )


def _opt_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def draft_from_dict(data: Mapping[str, Any]) -> Draft:
    """The inverse of :func:`draft_to_dict`; raises ``ValueError`` on a malformed file."""
    try:
        sender = data.get("sender") or {}
        settings = data.get("settings") or {}
        priority = data.get("priority")
        template_id = data.get("template_id")
        return Draft(
            sender=Address(str(sender.get("email", "")), str(sender.get("name", "") or "")),
            subject=str(data.get("subject", "")),
            body=str(data.get("body", "")),
            body_format=BodyFormat(data.get("body_format", BodyFormat.MARKDOWN)),
            amp=str(data.get("amp", "")),
            reply_to=str(data.get("reply_to", "")),
            envelopes=tuple(
                Envelope(
                    to=_addrs_from(e.get("to")),
                    cc=_addrs_from(e.get("cc")),
                    bcc=_addrs_from(e.get("bcc")),
                    attributes={str(k): str(v) for k, v in (e.get("attributes") or {}).items()},
                    headers={str(k): str(v) for k, v in (e.get("headers") or {}).items()},
                    attachments=_attachments_from(e.get("attachments")),
                    token=str(e.get("token", "")),
                )
                for e in data.get("envelopes") or []
            ),
            attachments=_attachments_from(data.get("attachments")),
            tags=tuple(str(t) for t in data.get("tags") or []),
            settings=TrackingSettings(
                open_track=_opt_bool(settings.get("open_track")),
                click_track=_opt_bool(settings.get("click_track")),
                unsubscribe_track=_opt_bool(settings.get("unsubscribe_track")),
                footer=_opt_bool(settings.get("footer")),
                ippool=str(settings.get("ippool", "") or ""),
            ),
            schedule=int(data.get("schedule") or 0),
            bcc=_addrs_from(data.get("bcc")),
            priority=None if priority is None else int(priority),
            template_id=None if template_id is None else int(template_id),
        )
    except (AttributeError, KeyError, OverflowError, TypeError, ValueError) as exc:
        # OverflowError: JSON's Infinity as a schedule, priority or template id.
        raise ValueError(f"Not a valid draft: {exc}") from exc
