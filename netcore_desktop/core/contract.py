"""Every constant of the Netcore email API that the app relies on, in one place.

The source for all of it is ``shared/netcore-api.md`` (the API contract): section numbers
below refer to that file. Nothing here imports Qt.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final


class ApiVersion(StrEnum):
    """API generation (contract §2)."""

    V6 = "v6"
    V5_1 = "v5.1"
    V5 = "v5"


class Region(StrEnum):
    """Hosted regions (contract §1); ``CUSTOM`` means a base URL of the profile's own."""

    DEFAULT = "default"
    EU = "eu"
    LEGACY = "legacy"
    CUSTOM = "custom"


#: Base URLs per region (contract §1).
REGION_BASE_URLS: Final[dict[Region, str]] = {
    Region.DEFAULT: "https://emailapi.netcorecloud.net",
    Region.EU: "https://apieu.netcorecloud.net",
    Region.LEGACY: "https://api.pepipost.com",
}

#: Send path per API generation (contract §2).
SEND_PATHS: Final[dict[ApiVersion, str]] = {
    ApiVersion.V6: "/v6/mail/send",
    ApiVersion.V5_1: "/v5.1/mail/send",
    ApiVersion.V5: "/v5/mail/send",
}

#: Bodies larger than this are gzip-compressed for v6 (contract §2).
GZIP_THRESHOLD_BYTES: Final = 64 * 1024

#: Attachment totals, measured base64-encoded as they travel: warn above, refuse above (§3).
ATTACHMENT_WARN_BYTES: Final = 10 * 1024 * 1024
ATTACHMENT_MAX_BYTES: Final = 25 * 1024 * 1024


def encoded_size(raw_bytes: int) -> int:
    """Size of ``raw_bytes`` of attachment once base64-encoded, as it travels (contract §3)."""
    return 4 * ((raw_bytes + 2) // 3)


#: Envelopes per request: warn above, and bulk work is split into requests of this size (§3).
MAX_ENVELOPES_PER_REQUEST: Final = 1000

#: Correlation values are at most this long (contract §3, §7).
TOKEN_MAX_LEN: Final = 255

#: Prefix of the correlation tokens the app makes (contract §3, "Decision (correlation)").
TOKEN_PREFIX: Final = "nd-"

#: Gmail clips an HTML body above roughly this size (issue 2: "HTML over 102 KB").
GMAIL_CLIP_BYTES: Final = 102 * 1024

#: Requests larger than this are refused by the sandbox with a 400 (issue 2).
SANDBOX_MAX_BODY_BYTES: Final = 30 * 1024 * 1024

#: ``[%KEY%]`` placeholders (contract §3). Keys are letters, digits and underscores.
PLACEHOLDER_RE: Final = re.compile(r"\[%([A-Za-z0-9_]+)%\]")

#: Allowed ``content[].type`` values (contract §3).
CONTENT_TYPES: Final = frozenset({"html", "amp"})

#: Allowed ``settings`` keys and their types (contract §3).
SETTINGS_FIELDS: Final[dict[str, type]] = {
    "open_track": bool,
    "click_track": bool,
    "unsubscribe_track": bool,
    "footer": bool,
    "ippool": str,
}

#: ``priorityflag`` values (contract §3, v6 only).
PRIORITY_VALUES: Final = frozenset({1, 2, 3})

#: Status codes and what they mean to a person (contract §4).
STATUS_MEANINGS: Final[dict[int, str]] = {
    200: "Sent: Netcore accepted the message.",
    201: "Created.",
    202: (
        "Accepted but queued: the account's daily limit may be reached, "
        "so delivery will be late. It will not be resent."
    ),
    400: "Refused: the request has invalid fields (see each field's message).",
    401: (
        "The key was refused: check the key and the region "
        "(EU accounts use the EU host)."
    ),
    403: (
        "Forbidden: the key lacks the scope for this call, "
        "or this computer's IP address is not on the account's allow-list."
    ),
    404: "Not found: the base URL or the path is wrong.",
    405: "Method not allowed: a bug in the app or a wrong base URL.",
    429: "Too many requests: waiting as the service asked before trying again.",
    500: "The service failed: it will be retried later with backoff.",
    502: "The service is unreachable behind its gateway: it will be retried with backoff.",
    503: "The service is unavailable: it will be retried with backoff.",
    504: "The service's gateway timed out: it will be retried with backoff.",
}

#: Status codes that are retried with backoff (contract §4).
RETRYABLE_STATUSES: Final = frozenset({500, 502, 503, 504})

#: Old-style ``errorcode`` values (contract §4).
LEGACY_ERROR_CODES: Final[dict[str, str]] = {
    "104": "The API key is missing.",
    "105": "The API key is invalid.",
    "106": "The call limit was exceeded.",
    "107": "This computer's IP address is not allowed to call the API.",
}

#: Event names as they vary between sources, mapped to one vocabulary (contract §8).
EVENT_ALIASES: Final[dict[str, str]] = {
    "processed": "processed",
    "sent": "delivered",
    "delivered": "delivered",
    "open": "opened",
    "opened": "opened",
    "click": "clicked",
    "clicked": "clicked",
    "unsubscribe": "unsubscribed",
    "unsubscribed": "unsubscribed",
    "unsub": "unsubscribed",
    "bounce": "bounced",
    "bounced": "bounced",
    "hardbounce": "bounced",
    "softbounce": "soft-bounced",
    "spam": "spam",
    "abuse": "spam",
    "invalid": "invalid",
    "dropped": "dropped",
    "drop": "dropped",
}


def normalise_event(name: str) -> str:
    """Map an event name from any source to the app's vocabulary (contract §8)."""
    key = name.strip().lower()
    return EVENT_ALIASES.get(key, key)


def status_meaning(status: int) -> str:
    """The plain-words meaning of an HTTP status (contract §4)."""
    if status in STATUS_MEANINGS:
        return STATUS_MEANINGS[status]
    if 200 <= status < 300:
        return "Accepted: Netcore took the request."
    if 400 <= status < 500:
        return f"Refused by the service (HTTP {status})."
    if status >= 500:
        return f"The service failed (HTTP {status}): it will be retried with backoff."
    return f"Unexpected answer (HTTP {status})."
