"""The Netcore HTTP client: send mail, templates, events and suppressions, with retries.

Everything here follows ``shared/netcore-api.md``: authentication per API generation (§2),
the status table and the three error-body shapes (§4), the retry rules (§4), and the other
endpoints (§6). Every call returns an :class:`ApiResult` instead of raising, so a front end
can show the answer, the request as sent (key masked) and the parsed field errors the same
way whatever happened.

One :class:`NetcoreClient` holds one keep-alive ``httpx.Client``; it is safe to share between
threads and cheap to call. :func:`to_curl` and :func:`to_python` turn a recorded request back
into a command that sends the very same body.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import logging
import os
import random
import re
import shlex
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

import httpx

from netcore_desktop import __version__
from netcore_desktop.core.contract import (
    GZIP_THRESHOLD_BYTES,
    LEGACY_ERROR_CODES,
    RETRYABLE_STATUSES,
    SEND_PATHS,
    ApiVersion,
    status_meaning,
)
from netcore_desktop.core.history import Outcome
from netcore_desktop.core.message import payload_bytes
from netcore_desktop.core.validation import FieldError

log = logging.getLogger(__name__)

#: What a key is replaced with wherever a request is shown or stored.
KEY_MASK: Final = "****"

#: Headers whose value is the key (contract §2); matched case-insensitively.
_KEY_HEADERS: Final = frozenset({"authorization", "api_key"})

#: Suppression add/remove calls take at most this many entries (contract §6).
SUPPRESSION_BATCH: Final = 1000

DEFAULT_USER_AGENT: Final = f"netcore-desktop/{__version__}"

#: Said when a send may or may not have reached the service (contract §4).
MAYBE_SENT: Final = (
    "No answer in time: the message may have been sent. "
    "Check the history/events before resending."
)


class ClientConfigError(ValueError):
    """The client was configured in a way that is refused (e.g. TLS verification off)."""


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One request as it went out, safe to show and store: the key is masked.

    ``body_bytes`` holds exactly the bytes that were sent, before any gzip compression;
    ``compressed`` says whether they travelled gzip-compressed.
    """

    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body_bytes: bytes = b""
    compressed: bool = False

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or ``None``."""
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None


@dataclass(frozen=True)
class ApiResult:
    """The answer to one call, whatever happened (contract §4).

    ``outcome`` is the history's vocabulary: ``sent``, ``queued`` (a 202: accepted, not an
    error, never resent), ``refused`` (4xx), ``failed`` (5xx or no connection, after the
    retries), ``unknown`` (the request went out but no answer came: it may have been sent)
    or ``cancelled``. ``meaning`` is a sentence for the person.
    """

    ok: bool
    status_code: int | None
    outcome: Outcome
    meaning: str
    message_id: str | None = None
    latency_ms: float = 0.0
    attempts: int = 0
    request: RequestRecord | None = None
    response_body: str = ""
    response_json: Any = None
    errors: tuple[FieldError, ...] = ()

    def field_errors(self) -> dict[str, list[str]]:
        """Error messages grouped by the field they name ("" for the whole request)."""
        out: dict[str, list[str]] = {}
        for err in self.errors:
            out.setdefault(err.field, []).append(err.message)
        return out

    def summary(self) -> str:
        """One line for a status bar or a terminal."""
        parts = [self.meaning]
        if self.message_id:
            parts.append(f"Message id {self.message_id}.")
        for err in self.errors:
            parts.append(f"{err.field}: {err.message}" if err.field else err.message)
        return " ".join(parts)


@dataclass(frozen=True)
class RetryPolicy:
    """How failed tries are repeated (contract §4).

    At most ``max_tries`` tries in all; the wait before try *n* (n ≥ 2) is drawn uniformly
    from ``[0, min(max_delay_s, base_delay_s * 2**(n-2))]`` ("full jitter"), so many clients
    that failed together do not come back together. A ``Retry-After`` on a 429 or 503 is
    honoured instead, capped at ``max_delay_s``.
    """

    max_tries: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES

    def __post_init__(self) -> None:
        # The contract's limits are upper bounds a caller may tighten, never loosen.
        if not 1 <= self.max_tries <= 4:
            raise ValueError("max_tries must be between 1 and 4 (contract §4).")
        if not 0 <= self.base_delay_s <= self.max_delay_s <= 30:
            raise ValueError("Delays must satisfy 0 <= base_delay_s <= max_delay_s <= 30 s.")

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the second try)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** (retry_number - 1)))
        return rng.uniform(0.0, max(0.0, ceiling))


# --- error bodies (contract §4) -----------------------------------------------------------


def parse_errors(body: Any) -> tuple[FieldError, ...]:
    """Field errors from any of the three error-body shapes of contract §4.

    1. ``{"error": [{"field", "message", "description"}, ...]}``
    2. ``{"error": "text", "info": "more text"}``
    3. ``{"errorcode": "105", "errormessage": "..."}`` (older accounts)

    Returns an empty tuple when the body fits none of them.
    """
    if not isinstance(body, dict):
        return ()
    out: list[FieldError] = []
    error = body.get("error")
    if isinstance(error, list):
        for item in error:
            if isinstance(item, dict):
                fld = str(item.get("field") or "")
                message = str(item.get("message") or "").strip()
                description = str(item.get("description") or "").strip()
                if description and description != message:
                    message = f"{message}: {description}" if message else description
                out.append(FieldError(fld, message or "Invalid value."))
            elif isinstance(item, str) and item.strip():
                out.append(FieldError("", item.strip()))
    elif isinstance(error, str) and error.strip():
        message = error.strip()
        info = body.get("info")
        if isinstance(info, str) and info.strip():
            message = f"{message}: {info.strip()}"
        out.append(FieldError("", message))
    code = body.get("errorcode")
    if code is not None and not out:
        text = LEGACY_ERROR_CODES.get(str(code).strip(), f"Error code {code}.")
        detail = body.get("errormessage")
        if isinstance(detail, str) and detail.strip() and detail.strip() not in text:
            text = f"{text} ({detail.strip()})"
        out.append(FieldError("", text))
    return tuple(out)


# Words an error body uses for the two reasons of a 403 (contract §4).
_IP_WORDS: Final = re.compile(r"\bip\b|whitelist|allow-?list|ip address", re.IGNORECASE)
_SCOPE_WORDS: Final = re.compile(r"scope|permission|privilege", re.IGNORECASE)


def _meaning_for(
    status: int, body: Any, response_text: str, host: str, errors: Sequence[FieldError]
) -> str:
    """The sentence for ``status``, sharpened with what the body and the host tell."""
    if status == 401:
        return (
            f"The key was refused by {host}: check the key and the region "
            "(EU accounts use the EU host apieu.netcorecloud.net)."
        )
    if status == 403:
        legacy = isinstance(body, dict) and str(body.get("errorcode", "")).strip() == "107"
        if legacy or _IP_WORDS.search(response_text):
            return (
                "Forbidden: this computer's IP address is not on the account's allow-list "
                "(add it in the Netcore dashboard)."
            )
        if _SCOPE_WORDS.search(response_text):
            return (
                "Forbidden: the key lacks the scope (permission) for this call; "
                "give the key that permission in the Netcore dashboard."
            )
        return status_meaning(403)
    if status == 400 and errors:
        count = len(errors)
        noun = "problem" if count == 1 else "problems"
        return f"Refused: the request has {count} {noun} (see each field's message)."
    if status in (500, 502, 503, 504):
        return f"The service failed (HTTP {status}) on every try."
    return status_meaning(status)


def _message_id(body: Any) -> str | None:
    if isinstance(body, dict):
        data = body.get("data")
        if isinstance(data, dict):
            mid = data.get("message_id") or data.get("messageId")
            if isinstance(mid, str | int) and str(mid):
                return str(mid)
        mid = body.get("message_id")
        if isinstance(mid, str) and mid:
            return mid
    return None


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def mask_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Headers with every key-bearing value replaced by :data:`KEY_MASK`."""
    out: list[tuple[str, str]] = []
    for name, value in headers:
        lower = name.lower()
        if lower in _KEY_HEADERS:
            if lower == "authorization" and " " in value:
                scheme = value.split(" ", 1)[0]
                value = f"{scheme} {KEY_MASK}"
            else:
                value = KEY_MASK
        out.append((name, value))
    return tuple(out)


# --- the client ------------------------------------------------------------------------------


def _ssl_verify(verify: str | bool) -> ssl.SSLContext | bool:
    if verify is False:
        # A profile can name a CA bundle for a private proxy; switching verification off
        # would let anyone on the path read the key, so it is not offered at all.
        raise ClientConfigError(
            "TLS verification cannot be turned off; give the CA bundle file instead."
        )
    if verify is True:
        return True
    if not isinstance(verify, str) or not verify:
        raise ClientConfigError("verify must be True or the path of a CA bundle file.")
    try:
        # "~/ca.pem" is accepted by the profile check (and by SMTP): expand it here too.
        return ssl.create_default_context(cafile=os.path.expanduser(verify))
    except (OSError, ssl.SSLError) as exc:
        raise ClientConfigError(f"The CA bundle {verify!r} cannot be read: {exc}") from exc


def _network_meaning(exc: Exception, host: str, *, written: bool) -> str:
    if written:
        return MAYBE_SENT
    if isinstance(exc, httpx.ConnectTimeout):
        return (
            f"Could not reach {host} in time: check the network connection, the proxy "
            "and the base URL. Nothing was sent."
        )
    if isinstance(exc, httpx.PoolTimeout):
        return "Too many requests were waiting for a connection. Nothing was sent."
    if isinstance(exc, httpx.ProxyError):
        return (
            f"The proxy refused the connection ({exc}): check the proxy setting. "
            "Nothing was sent."
        )
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
        return (
            f"The TLS certificate of {host} could not be verified: if a company proxy "
            "inspects traffic, give its CA bundle in the profile. Nothing was sent."
        )
    return (
        f"Could not connect to {host}: check the network connection, the proxy and the "
        "base URL. Nothing was sent."
    )


# Errors raised before any byte of the request went out: retrying cannot send twice.
_NOT_WRITTEN: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
)
# Errors raised before sending that no retry can cure (a bad URL or header value).
_NEVER_SENDABLE: Final = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


class NetcoreClient:
    """A client for one Netcore account (base URL + key + API generation).

    The connection pool is kept alive between calls; close the client (or use it as a
    context manager) when done. All methods are thread-safe and never raise for an
    HTTP or network failure: they return an :class:`ApiResult`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        api_version: ApiVersion = ApiVersion.V6,
        timeout: httpx.Timeout | float = 30.0,
        proxy: str | None = None,
        verify: str | bool = True,
        user_agent: str = DEFAULT_USER_AGENT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Configure the client; no connection is made until the first call.

        ``timeout`` is one number for every phase or an ``httpx.Timeout`` with separate
        connect/read/write/pool values. ``proxy`` overrides the system/environment proxy
        (which is used otherwise). ``verify`` is ``True`` or the path of a CA bundle; it can
        never be ``False``.
        """
        self.base_url = base_url.strip().rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientConfigError(
                f"The base URL {base_url!r} is not an http(s) address such as "
                "https://emailapi.netcorecloud.net."
            )
        if not api_key or not api_key.isascii() or not api_key.isprintable() or " " in api_key:
            # Never quote the key itself: this message may end up in a log.
            raise ClientConfigError(
                "The API key is empty or holds characters a key cannot have "
                "(spaces, line breaks or non-ASCII letters): paste it again."
            )
        self.api_version = ApiVersion(api_version)
        self.retry = retry or RetryPolicy()
        self._api_key = api_key
        self._user_agent = user_agent
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._host = parts.hostname
        self._http = httpx.Client(
            timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
            proxy=proxy or None,
            verify=_ssl_verify(verify),
            trust_env=True,
            http2=False,
            transport=transport,
            follow_redirects=False,
        )

    # -- lifecycle --

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> NetcoreClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- headers --

    def _auth_headers(self, version: ApiVersion) -> dict[str, str]:
        if version is ApiVersion.V6:
            return {"Authorization": f"Bearer {self._api_key}"}
        return {"api_key": self._api_key}

    def _headers(self, version: ApiVersion, *, json_body: bool) -> dict[str, str]:
        headers = {"User-Agent": self._user_agent, "Accept": "application/json"}
        if json_body:
            headers["Content-Type"] = "application/json"
        headers.update(self._auth_headers(version))
        return headers

    # -- the one request loop --

    def _request(
        self,
        method: str,
        path: str,
        *,
        version: ApiVersion,
        body: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = False,
        allow_timeout_retry: bool = False,
        cancel: threading.Event | None = None,
    ) -> ApiResult:
        """Send one logical call with the retry rules of contract §4."""
        url = self.base_url + path
        if params:
            query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=False)
            if query:
                url = f"{url}?{query}"
        headers = self._headers(version, json_body=body is not None)
        wire = body
        compressed = False
        if (
            body is not None
            and version is ApiVersion.V6
            and len(body) > GZIP_THRESHOLD_BYTES
        ):
            # mtime=0 keeps the compressed bytes the same for the same body.
            wire = gzip.compress(body, compresslevel=6, mtime=0)
            headers["Content-Encoding"] = "gzip"
            compressed = True
        request = self._http.build_request(method, url, headers=headers, content=wire)
        record = RequestRecord(
            method=method,
            url=url,
            headers=mask_headers(request.headers.multi_items()),
            body_bytes=body or b"",
            compressed=compressed,
        )
        # A GET cannot change anything, so a read timeout on one is safe to retry.
        timeout_retry = allow_timeout_retry or idempotent
        started = time.perf_counter()
        tries = 0
        last: ApiResult | None = None
        maybe_sent = False
        while True:
            if cancel is not None and cancel.is_set():
                return self._cancelled(record, tries, started, last, maybe_sent)
            tries += 1
            result, retry_after, retryable = self._try_once(request, record, tries, started)
            last = result
            maybe_sent = maybe_sent or result.outcome is Outcome.UNKNOWN
            if result.outcome is Outcome.FAILED and maybe_sent:
                # An earlier try may have gone through: the truth is still "unknown".
                result = last = replace(result, outcome=Outcome.UNKNOWN, meaning=MAYBE_SENT)
            if not retryable or (result.outcome is Outcome.UNKNOWN and not timeout_retry):
                return result
            if tries >= self.retry.max_tries:
                return result
            if retry_after is not None:
                delay = min(retry_after, self.retry.max_delay_s)
            else:
                with self._rng_lock:
                    delay = self.retry.backoff(tries, self._rng)
            log.info(
                "%s %s: %s; try %d of %d in %.2f s",
                method, path, result.status_code or "no answer", tries + 1,
                self.retry.max_tries, delay,
            )
            if cancel is not None:
                if cancel.wait(delay):
                    return self._cancelled(record, tries, started, last, maybe_sent)
            elif delay > 0:
                time.sleep(delay)

    def _cancelled(
        self,
        record: RequestRecord,
        tries: int,
        started: float,
        last: ApiResult | None,
        maybe_sent: bool,
    ) -> ApiResult:
        if last is not None and maybe_sent:
            # An earlier try may have gone through; cancelling cannot undo that.
            return replace(
                last,
                outcome=Outcome.UNKNOWN,
                meaning=MAYBE_SENT,
                attempts=tries,
                latency_ms=(time.perf_counter() - started) * 1000.0,
            )
        meaning = "Cancelled before it was sent."
        if last is not None:
            meaning = f"Cancelled after {tries} tries; nothing was accepted. {last.meaning}"
        return ApiResult(
            ok=False,
            status_code=last.status_code if last else None,
            outcome=Outcome.CANCELLED,
            meaning=meaning,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            attempts=tries,
            request=record,
            response_body=last.response_body if last else "",
            response_json=last.response_json if last else None,
            errors=last.errors if last else (),
        )

    def _try_once(
        self, request: httpx.Request, record: RequestRecord, tries: int, started: float
    ) -> tuple[ApiResult, float | None, bool]:
        """One try: (result, Retry-After seconds, whether a retry is allowed)."""

        def no_answer(outcome: Outcome, meaning: str, detail: str) -> ApiResult:
            return ApiResult(
                ok=False,
                status_code=None,
                outcome=outcome,
                meaning=meaning,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                attempts=tries,
                request=record,
                response_body=detail,
            )

        try:
            response = self._http.send(request)
        except _NEVER_SENDABLE as exc:
            meaning = (
                f"The request could not be made ({exc}): check the base URL and the key. "
                "Nothing was sent."
            )
            return no_answer(Outcome.FAILED, meaning, str(exc)), None, False
        except _NOT_WRITTEN as exc:
            log.warning("%s %s: not sent: %s", record.method, self._host, exc)
            meaning = _network_meaning(exc, self._host, written=False)
            return no_answer(Outcome.FAILED, meaning, str(exc)), None, True
        except httpx.TransportError as exc:
            # Read timeouts, dropped connections, protocol errors: the request may have
            # been processed. Only the caller may decide to try again (contract §4).
            log.warning("%s %s: no answer: %r", record.method, self._host, exc)
            meaning = _network_meaning(exc, self._host, written=True)
            return no_answer(Outcome.UNKNOWN, meaning, f"{type(exc).__name__}: {exc}"), None, True
        latency = (time.perf_counter() - started) * 1000.0
        status = response.status_code
        text = response.text
        parsed: Any = None
        if text:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        ok = 200 <= status < 300
        errors = () if ok else parse_errors(parsed)
        if not ok and not errors:
            log.warning(
                "HTTP %d from %s with an unrecognised body: %.2000s", status, self._host, text
            )
        retry_after = _retry_after(response) if status in (429, 503) else None
        retryable = status in self.retry.retry_statuses or (
            status == 429 and retry_after is not None
        )
        outcome = Outcome.for_status(status)
        meaning = _meaning_for(status, parsed, text, self._host, errors)
        if status == 429:
            outcome = Outcome.FAILED
        elif ok and text.strip() and not isinstance(parsed, dict | list):
            # Netcore always answers JSON; a 2xx page of HTML comes from something in
            # between (a captive portal, a proxy's login page, a wrong base URL).
            ok, outcome = False, Outcome.UNKNOWN
            meaning = (
                f"HTTP {status} with an answer that is not Netcore's (not JSON): check the "
                "base URL and the proxy. The message may not have been sent; check the "
                "history/events before resending."
            )
        result = ApiResult(
            ok=ok,
            status_code=status,
            outcome=outcome,
            meaning=meaning,
            message_id=_message_id(parsed) if ok else None,
            latency_ms=latency,
            attempts=tries,
            request=record,
            response_body=text,
            response_json=parsed,
            errors=errors,
        )
        return result, retry_after, retryable

    # -- send mail (contract §2-§4) --

    def send(
        self,
        payload: Mapping[str, Any] | bytes,
        *,
        allow_timeout_retry: bool = False,
        cancel: threading.Event | None = None,
    ) -> ApiResult:
        """Send one mail request (a payload from ``build_payload``, or its exact bytes).

        A read timeout is reported as ``unknown`` ("may have been sent") and retried only
        when ``allow_timeout_retry`` is true. Setting ``cancel`` stops between tries.
        """
        body = payload if isinstance(payload, bytes) else payload_bytes(payload)
        return self._request(
            "POST",
            SEND_PATHS[self.api_version],
            version=self.api_version,
            body=body,
            allow_timeout_retry=allow_timeout_retry,
            cancel=cancel,
        )

    # -- templates (contract §6, v6) --

    def list_templates(self, page: int = 1, per_page: int = 50) -> ApiResult:
        """One page of the account's stored templates."""
        return self._request(
            "GET",
            "/v6/templates",
            version=ApiVersion.V6,
            params={"page": page, "per_page": per_page},
            idempotent=True,
        )

    def get_template(self, template_id: int | str) -> ApiResult:
        """One template with its HTML."""
        return self._request(
            "GET",
            f"/v6/templates/{quote(str(template_id), safe='')}",
            version=ApiVersion.V6,
            idempotent=True,
        )

    def create_template(self, name: str, html: str, **extra: Any) -> ApiResult:
        """Create a template (201 on success); the HTML travels URL-encoded (contract §6)."""
        body = {"name": name, "html": quote(html, safe=""), **extra}
        return self._request(
            "POST", "/v6/templates", version=ApiVersion.V6, body=payload_bytes(body)
        )

    def update_template(
        self, template_id: int | str, *, name: str | None = None, html: str | None = None,
        **extra: Any,
    ) -> ApiResult:
        """Change a template's name and/or HTML."""
        body: dict[str, Any] = dict(extra)
        if name is not None:
            body["name"] = name
        if html is not None:
            body["html"] = quote(html, safe="")
        return self._request(
            "PUT",
            f"/v6/templates/{quote(str(template_id), safe='')}",
            version=ApiVersion.V6,
            body=payload_bytes(body),
        )

    # -- events (contract §6, v5.1 whatever the profile's generation) --

    def events(
        self,
        *,
        email: str | None = None,
        xapiheader: str | None = None,
        startdate: date | str | None = None,
        enddate: date | str | None = None,
        events: Sequence[str] | None = None,
        limit: int = 100,
        offset: int = 0,
        sort: str = "asc",
    ) -> ApiResult:
        """Delivery events by recipient and/or correlation token (``X-APIHEADER``).

        Dates default to the last 30 days up to today. The exact v6 logs path is not
        public, so this is the v5.1 ``/events`` call with the same key (contract §6).
        """
        today = datetime.now().date()
        end = enddate or today
        start = startdate or date.fromordinal(today.toordinal() - 30)
        params: dict[str, Any] = {
            "startdate": start.isoformat() if isinstance(start, date) else start,
            "enddate": end.isoformat() if isinstance(end, date) else end,
            "events": ",".join(events) if events else None,
            "email": email,
            "xapiheader": xapiheader,
            "limit": limit,
            "offset": offset,
            "sort": sort,
        }
        return self._request(
            "GET", "/v5.1/events", version=ApiVersion.V5_1, params=params, idempotent=True
        )

    # -- suppression (contract §6, v6) --

    @staticmethod
    def _suppression_path(kind: str) -> str:
        if kind not in ("emails", "domains"):
            raise ValueError("kind must be 'emails' or 'domains'")
        return f"/v6/suppression/{kind}"

    def suppression_list(
        self, kind: str = "emails", *, page: int = 1, per_page: int = 100
    ) -> ApiResult:
        """Suppressed addresses (``kind="emails"``) or domains (``kind="domains"``)."""
        return self._request(
            "GET",
            self._suppression_path(kind),
            version=ApiVersion.V6,
            params={"page": page, "per_page": per_page},
            idempotent=True,
        )

    def _suppression_change(self, method: str, items: Iterable[str], kind: str) -> list[ApiResult]:
        path = self._suppression_path(kind)
        values = [v.strip() for v in items if v and v.strip()]
        results: list[ApiResult] = []
        for start in range(0, len(values), SUPPRESSION_BATCH):
            chunk = values[start : start + SUPPRESSION_BATCH]
            result = self._request(
                method, path, version=ApiVersion.V6, body=payload_bytes({kind: chunk})
            )
            results.append(result)
            if not result.ok:
                break  # later chunks would most likely fail the same way
        return results

    def suppression_add(self, items: Iterable[str], kind: str = "emails") -> list[ApiResult]:
        """Suppress addresses or domains, in calls of at most 1,000; one result per call.

        Stops at the first call that is not accepted.
        """
        return self._suppression_change("POST", items, kind)

    def suppression_remove(self, items: Iterable[str], kind: str = "emails") -> list[ApiResult]:
        """Lift suppressions, in calls of at most 1,000; one result per call."""
        return self._suppression_change("DELETE", items, kind)


# --- copy as cURL / Python ----------------------------------------------------------------

# Headers the tools compute themselves from the URL and the body.
_SKIP_COPY: Final = frozenset({"host", "content-length", "connection", "accept-encoding"})


def _reveal(headers: Sequence[tuple[str, str]], key: str | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in headers:
        if name.lower() in _SKIP_COPY:
            continue
        if key is not None and name.lower() in _KEY_HEADERS:
            value = value.replace(KEY_MASK, key)
        out.append((name, value))
    return out


def _shell_bytes(data: bytes) -> str:
    """A ``printf`` command whose output is exactly ``data``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and "\0" not in text:
        return f"printf '%s' {shlex.quote(text)}"
    # Not text: every byte as an octal escape, which printf's format turns back into it.
    return "printf '" + "".join(f"\\{b:03o}" for b in data) + "'"


def to_curl(request: RequestRecord, reveal_key: str | None = None) -> str:
    """A shell command that sends the same request with ``curl``.

    The body goes through ``printf`` into ``--data-binary @-``, so it arrives byte for byte
    (no argument-length limit, no added newline); a body that was sent compressed is piped
    through ``gzip -n`` and keeps its ``Content-Encoding``. The key stays masked unless
    ``reveal_key`` is given.
    """
    parts = ["curl", "--silent", "--show-error", "-X", request.method, shlex.quote(request.url)]
    for name, value in _reveal(request.headers, reveal_key):
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if not request.body_bytes:
        return " ".join(parts)
    parts += ["--data-binary", "@-"]
    feed = _shell_bytes(request.body_bytes)
    if request.compressed:
        feed += " | gzip -c -n"
    return f"{feed} | {' '.join(parts)}"


def to_python(request: RequestRecord, reveal_key: str | None = None) -> str:
    """A Python script (httpx) that sends the same request, body byte for byte.

    The key stays masked unless ``reveal_key`` is given.
    """
    headers = dict(_reveal(request.headers, reveal_key))
    content = "gzip.compress(body, mtime=0)" if request.compressed else "body"
    lines = ["import gzip"] if request.compressed else []
    lines += [
        "import httpx",
        "",
        f"url = {request.url!r}",
        f"headers = {headers!r}",
        f"body = {request.body_bytes!r}",
        f"response = httpx.request({request.method!r}, url, headers=headers, content={content})",
        "print(response.status_code)",
        "print(response.text)",
    ]
    return "\n".join(lines) + "\n"


__all__ = [
    "KEY_MASK",
    "MAYBE_SENT",
    "ApiResult",
    "ClientConfigError",
    "NetcoreClient",
    "RequestRecord",
    "RetryPolicy",
    "mask_headers",
    "parse_errors",
    "to_curl",
    "to_python",
]
