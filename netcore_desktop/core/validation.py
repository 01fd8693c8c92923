"""What makes a send-mail request body valid: one definition, used by the app and the sandbox.

:func:`validate_payload` checks any decoded JSON value against ``shared/netcore-api.md`` §3
and returns one :class:`FieldError` per problem, each naming its field with a path such as
``personalizations[0].to[1].email``. It never raises, whatever it is given.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from email_validator import EmailNotValidError, validate_email

from netcore_desktop.core.contract import (
    CONTENT_TYPES,
    PRIORITY_VALUES,
    SETTINGS_FIELDS,
    TOKEN_MAX_LEN,
    ApiVersion,
)


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a request."""

    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        """The element of the contract's ``error`` list (§4)."""
        return {"field": self.field, "message": self.message, "description": self.message}


# A header name is a token of printable ASCII without a colon (RFC 5322 §2.2).
_HEADER_NAME_RE: Final = re.compile(r"^[!-9;-~]+$")
_RESERVED_TLD_RE: Final = re.compile(r"\.(?:invalid|test)$", re.IGNORECASE)


@lru_cache(maxsize=4096)
def email_problem(address: str) -> str | None:
    """Why ``address`` is not a usable email address, or ``None`` when it is."""
    if not address or not address.strip():
        return "The address is empty."
    if address != address.strip():
        return f"'{address}' has spaces around it."
    # Addresses under the reserved ".invalid" and ".test" names are how the sandbox rehearses
    # bounces (contract §9), so they are checked as if they were ordinary domains.
    checked = _RESERVED_TLD_RE.sub(".example", address)
    try:
        validate_email(checked, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        return f"'{address}' is not a valid email address: {exc}"
    return None


def _is_str_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def address(self, field: str, value: object, *, name_allowed: bool = True) -> None:
        if not isinstance(value, dict):
            self.add(field, "Must be an object with an 'email' field.")
            return
        email = value.get("email")
        if not isinstance(email, str):
            self.add(f"{field}.email", "The email address is missing.")
        else:
            problem = email_problem(email)
            if problem:
                self.add(f"{field}.email", problem)
        if "name" in value and (not name_allowed or not isinstance(value["name"], str)):
            self.add(f"{field}.name", "The name must be text.")

    def address_list(self, field: str, value: object, *, required: bool) -> None:
        if value is None and not required:
            return
        if not isinstance(value, list):
            self.add(field, "Must be a list of addresses.")
            return
        if required and not value:
            self.add(field, "At least one recipient is needed.")
        for i, item in enumerate(value):
            self.address(f"{field}[{i}]", item)

    def attachments(self, field: str, value: object) -> None:
        if not isinstance(value, list):
            self.add(field, "Must be a list of {name, content} objects.")
            return
        for i, item in enumerate(value):
            here = f"{field}[{i}]"
            if not isinstance(item, dict):
                self.add(here, "Must be an object with 'name' and 'content'.")
                continue
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                self.add(f"{here}.name", "The attachment needs a file name.")
            content = item.get("content")
            if not isinstance(content, str):
                self.add(f"{here}.content", "The attachment content must be base64 text.")
                continue
            try:
                base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                self.add(f"{here}.content", "The attachment content is not valid base64.")

    def string_map(self, field: str, value: object, *, headers: bool = False) -> None:
        if not _is_str_map(value):
            self.add(field, "Must be an object whose keys and values are text.")
            return
        assert isinstance(value, dict)
        if headers:
            for key in value:
                if not _HEADER_NAME_RE.match(key):
                    self.add(f"{field}.{key}", f"'{key}' is not a valid header name.")
                elif "\n" in value[key] or "\r" in value[key]:
                    self.add(f"{field}.{key}", "A header value cannot contain line breaks.")

    def token(self, field: str, value: object) -> None:
        if not isinstance(value, str):
            self.add(field, "Must be text.")
        elif len(value) > TOKEN_MAX_LEN:
            self.add(field, f"Must be at most {TOKEN_MAX_LEN} characters.")

    def envelope(self, field: str, value: object) -> None:
        if not isinstance(value, dict):
            self.add(field, "Must be an object with a 'to' list.")
            return
        self.address_list(f"{field}.to", value.get("to"), required=True)
        for key in ("cc", "bcc"):
            self.address_list(f"{field}.{key}", value.get(key), required=False)
        if "attributes" in value:
            self.string_map(f"{field}.attributes", value["attributes"])
        if "headers" in value:
            self.string_map(f"{field}.headers", value["headers"], headers=True)
        if "attachments" in value:
            self.attachments(f"{field}.attachments", value["attachments"])
        for key in ("token_to", "token_cc", "token_bcc"):
            if key in value:
                self.token(f"{field}.{key}", value[key])


def validate_payload(payload: object, api_version: ApiVersion = ApiVersion.V6) -> list[FieldError]:
    """Every problem with a send-mail request body; an empty list means it is valid."""
    c = _Checker()
    if not isinstance(payload, dict):
        c.add("body", "The request body must be a JSON object.")
        return c.errors
    c.address("from", payload.get("from"))
    subject = payload.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        c.add("subject", "The subject is missing.")

    template_id = payload.get("template_id")
    if "template_id" in payload and (
        not isinstance(template_id, int) or isinstance(template_id, bool) or template_id <= 0
    ):
        c.add("template_id", "The template id must be a positive whole number.")
    content = payload.get("content")
    if content is None:
        if "template_id" not in payload:
            c.add("content", "The message needs an HTML body (content) or a template_id.")
    elif not isinstance(content, list) or (not content and "template_id" not in payload):
        c.add("content", "Must be a list of {type, value} objects.")
    else:
        has_html = False
        for i, item in enumerate(content):
            here = f"content[{i}]"
            if not isinstance(item, dict):
                c.add(here, "Must be an object with 'type' and 'value'.")
                continue
            kind = item.get("type")
            # isinstance first: a list or object as the type is unhashable, not an exception.
            if not isinstance(kind, str) or kind not in CONTENT_TYPES:
                c.add(f"{here}.type", "The type must be 'html' or 'amp'.")
            value = item.get("value")
            if not isinstance(value, str) or not value.strip():
                c.add(f"{here}.value", "The body is empty.")
            elif kind == "html":
                has_html = True
        if content and not has_html and "template_id" not in payload:
            c.add("content", "An HTML part is required (AMP alone is not enough).")

    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        c.add("personalizations", "At least one recipient envelope is needed.")
    else:
        for i, env in enumerate(personalizations):
            c.envelope(f"personalizations[{i}]", env)

    if "reply_to" in payload:
        reply_to = payload["reply_to"]
        if isinstance(reply_to, str):
            problem = email_problem(reply_to)
            if problem:
                c.add("reply_to", problem)
        elif isinstance(reply_to, list) and api_version is ApiVersion.V6:
            for i, item in enumerate(reply_to):
                c.address(f"reply_to[{i}]", item)
        else:
            c.add("reply_to", "Must be an email address.")
    if "attachments" in payload:
        c.attachments("attachments", payload["attachments"])
    if "settings" in payload:
        settings = payload["settings"]
        if not isinstance(settings, dict):
            c.add("settings", "Must be an object.")
        else:
            for key, value in settings.items():
                expected = SETTINGS_FIELDS.get(key)
                if expected is None:
                    c.add(f"settings.{key}", f"'{key}' is not a known setting.")
                elif not isinstance(value, expected):
                    kind = "true or false" if expected is bool else "text"
                    c.add(f"settings.{key}", f"Must be {kind}.")
    if "tags" in payload:
        tags = payload["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            c.add("tags", "Must be a list of text labels.")
    if "schedule" in payload:
        schedule = payload["schedule"]
        if not isinstance(schedule, int) or isinstance(schedule, bool) or schedule < 0:
            c.add("schedule", "Must be a Unix time in seconds (0 sends now).")
    if "bcc" in payload:
        c.address_list("bcc", payload["bcc"], required=False)
    if "priorityflag" in payload:
        flag = payload["priorityflag"]
        if api_version is not ApiVersion.V6:
            c.add("priorityflag", "Only the v6 API takes a priority flag.")
        elif not isinstance(flag, int) or isinstance(flag, bool) or flag not in PRIORITY_VALUES:
            c.add("priorityflag", "Must be 1 (transactional), 2 (triggered) or 3 (promotional).")
    return c.errors
