"""The one sending path: checks, render, payload, send, history, for every front end.

The command line, the window's worker thread and bulk jobs all send through a
:class:`SendService`, so a message is checked, rendered, recorded and sent the same way
whoever asks:

1. :meth:`SendService.prepare` gives every envelope a fresh correlation token, renders the
   body once, builds the request body(ies) from that rendered HTML and runs the pre-send
   checks on the same HTML (``shared/netcore-api.md`` §3, §5). Drafts with more than 1,000
   envelopes become several requests of at most 1,000 (§3).
2. :meth:`SendService.send` records each request in the history *before* it goes out, sends
   it over the profile's transport (HTTP API or SMTP relay, §7) and completes the history
   entry with the answer, whatever happens.
3. :meth:`SendService.resend` sends an earlier attempt again, optionally to a corrected
   address, as a new attempt linked to the original.

A service is bound to one profile. Creating one is cheap (no keyring or network access until
the first send); its methods are thread-safe.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from netcore_desktop.core.checks import (
    FIELD_SCHEDULE,
    FIELD_TEMPLATE_ID,
    Problem,
    Severity,
    has_blocking,
    run_checks,
)
from netcore_desktop.core.client import (
    ApiResult,
    ClientConfigError,
    NetcoreClient,
    RetryPolicy,
)
from netcore_desktop.core.contract import MAX_ENVELOPES_PER_REQUEST, SEND_PATHS, ApiVersion
from netcore_desktop.core.history import History, Outcome
from netcore_desktop.core.message import (
    Address,
    Draft,
    Envelope,
    build_payload,
    payload_bytes,
    with_fresh_tokens,
)
from netcore_desktop.core.profiles import Profile, Transport
from netcore_desktop.core.render import render_html
from netcore_desktop.core.secrets import SecretStore, SecretStoreError
from netcore_desktop.core.smtp import SmtpSecurityError, SmtpTransport, build_mime, smtp_url

log = logging.getLogger(__name__)

#: Outcomes that mean the service took the message.
ACCEPTED: Final = frozenset({Outcome.SENT, Outcome.QUEUED})

# From least to most worrying, for summing up several requests in one outcome.
_SEVERITY: Final = {
    Outcome.SENT: 0,
    Outcome.QUEUED: 1,
    Outcome.CANCELLED: 2,
    Outcome.REFUSED: 3,
    Outcome.FAILED: 4,
    Outcome.UNKNOWN: 5,
}


class SendError(Exception):
    """Sending could not start; ``code`` says why and the message says what to do.

    Codes: ``missing_key`` (no API key or SMTP password stored), ``keyring`` (the keyring
    failed), ``config`` (the profile's connection settings are refused), ``checks`` (the
    draft has blocking problems, see :class:`ChecksFailed`), ``not_found`` (no such attempt).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class MissingKeyError(SendError):
    """No API key (or SMTP password) is stored for the profile."""

    def __init__(self, message: str) -> None:
        super().__init__("missing_key", message)


class ChecksFailed(SendError):
    """The draft has problems that block sending; they are in :attr:`problems`."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        blocking = [p for p in problems if p.blocking]
        first = blocking[0].message if blocking else "the draft has blocking problems"
        more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
        super().__init__("checks", f"Not sent: {first}{more}")
        self.problems = tuple(problems)


@dataclass(frozen=True)
class PreparedRequest:
    """One request of a prepared send: some envelopes of the draft and their exact body."""

    #: The draft narrowed to this request's envelopes (what the history records).
    draft: Draft
    payload: dict[str, Any]
    #: ``payload`` as the bytes that go on the wire (API transport).
    body: bytes


@dataclass(frozen=True)
class Prepared:
    """A draft ready to send: tokens given, body rendered once, checks run on that body."""

    #: The draft with fresh correlation tokens.
    draft: Draft
    #: The rendered HTML body (placeholders left in), shared by payload, checks and preview.
    html: str
    requests: tuple[PreparedRequest, ...]
    problems: tuple[Problem, ...]
    #: Credits the send costs (contract §5).
    credits: int
    transport: Transport
    api_version: ApiVersion

    @property
    def payload(self) -> dict[str, Any]:
        """The request body of the first (usually only) request."""
        return self.requests[0].payload

    @property
    def blocking(self) -> bool:
        """Whether a problem stops the send."""
        return has_blocking(self.problems)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """Problems that ask for confirmation before sending."""
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)

    @property
    def tokens(self) -> tuple[str, ...]:
        """The correlation token of every envelope, in order."""
        return tuple(e.token for e in self.draft.envelopes)


@dataclass(frozen=True)
class SentRequest:
    """One request that went through the history: its attempt id and its answer."""

    attempt_id: int
    result: ApiResult
    #: Envelope recipients of this request (to, cc, bcc), for messages to the person.
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class SendOutcome:
    """What a send did: one :class:`SentRequest` per request (usually exactly one)."""

    requests: tuple[SentRequest, ...]

    @property
    def attempt_id(self) -> int:
        """The history id of the first request."""
        return self.requests[0].attempt_id

    @property
    def attempt_ids(self) -> tuple[int, ...]:
        """The history ids of every request."""
        return tuple(r.attempt_id for r in self.requests)

    @property
    def result(self) -> ApiResult:
        """The answer that matters most: the most worrying one (the first when all agree)."""
        return max(self.requests, key=lambda r: _SEVERITY[r.result.outcome]).result

    @property
    def outcome(self) -> Outcome:
        """The most worrying outcome over all requests."""
        return self.result.outcome

    @property
    def ok(self) -> bool:
        """Whether every request was accepted (sent or queued)."""
        return all(r.result.outcome in ACCEPTED for r in self.requests)


def split_envelopes(draft: Draft, size: int = MAX_ENVELOPES_PER_REQUEST) -> list[Draft]:
    """``draft`` cut into drafts of at most ``size`` envelopes each (contract §3)."""
    if len(draft.envelopes) <= size:
        return [draft]
    return [
        replace(draft, envelopes=draft.envelopes[i : i + size])
        for i in range(0, len(draft.envelopes), size)
    ]


def _smtp_problems(draft: Draft) -> list[Problem]:
    """What the SMTP relay cannot do that the API can (contract §7 vs §3)."""
    out: list[Problem] = []
    if draft.template_id is not None:
        out.append(
            Problem(
                FIELD_TEMPLATE_ID,
                Severity.ERROR,
                "Stored templates can only be sent through the API: this profile sends over "
                "SMTP. Paste the template's HTML into the body, or use an API profile.",
            )
        )
    if draft.schedule:
        out.append(
            Problem(
                FIELD_SCHEDULE,
                Severity.ERROR,
                "The SMTP relay cannot schedule a send: clear the time to send now, or use "
                "an API profile.",
            )
        )
    return out


def prepare_for(profile: Profile, draft: Draft) -> Prepared:
    """``draft`` made ready to send with ``profile``; needs no key, no network, no history.

    Every envelope gets a fresh correlation token; the body is rendered once, and that one
    HTML goes into the request body(ies) and into the checks.
    """
    ready = with_fresh_tokens(draft)
    html = render_html(ready) if (ready.body.strip() or ready.template_id is None) else ""
    problems = run_checks(
        ready, api_version=profile.api_version, live=not profile.is_sandbox, rendered_html=html
    )
    if profile.transport is Transport.SMTP:
        problems = _smtp_problems(ready) + problems
        # One SMTP message per envelope (contract §7).
        parts = split_envelopes(ready, 1)
    else:
        parts = split_envelopes(ready)
    requests = []
    for part in parts:
        payload = build_payload(part, profile.api_version, html)
        requests.append(PreparedRequest(part, payload, payload_bytes(payload)))
    return Prepared(
        draft=ready,
        html=html,
        requests=tuple(requests),
        problems=tuple(problems),
        credits=ready.credit_count(),
        transport=profile.transport,
        api_version=profile.api_version,
    )


class SendService:
    """Prepares, sends and resends drafts for one profile, recording every attempt.

    ``client`` (an API client for the profile's account) may be given, e.g. to share a
    connection pool; otherwise one is made at the first API send with the key from
    ``secrets`` and closed by :meth:`close`.
    """

    def __init__(
        self,
        profile: Profile,
        secrets: SecretStore,
        history: History,
        *,
        client: NetcoreClient | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        """Bind the service to ``profile``; nothing slow happens here.

        ``retry`` changes the retry policy of the client (and SMTP transport) this service
        makes.
        """
        self.profile = profile
        self.secrets = secrets
        self.history = history
        self._retry = retry
        self._client = client
        self._owns_client = client is None
        self._smtp: SmtpTransport | None = None
        self._lock = threading.Lock()

    # -- lifecycle --

    def close(self) -> None:
        """Close the API client this service made (an injected one is left open)."""
        with self._lock:
            if self._client is not None and self._owns_client:
                self._client.close()
                self._client = None

    def __enter__(self) -> SendService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- where requests go --

    @property
    def endpoint(self) -> str:
        """The URL the profile's sends go to (``smtp://host:port`` over SMTP)."""
        p = self.profile
        if p.transport is Transport.SMTP:
            return smtp_url(p.smtp_host, p.smtp_port, p.smtp_security)
        return p.api_base_url() + SEND_PATHS[p.api_version]

    def _secret(self, kind: str) -> str:
        p = self.profile
        try:
            value = (
                self.secrets.get_api_key(p.name)
                if kind == "key"
                else self.secrets.get_smtp_password(p.name)
            )
        except SecretStoreError as exc:
            raise SendError("keyring", str(exc)) from exc
        if value:
            return value
        if kind == "key":
            raise MissingKeyError(
                f"No API key is stored for profile '{p.name}'. Set it with "
                f"`netcore-desktop profile set-key {p.name}` (or in the window: Profiles, "
                "Set key)."
            )
        raise MissingKeyError(
            f"No SMTP password is stored for profile '{p.name}'. Set it with "
            f"`netcore-desktop profile set-smtp-password {p.name}` (or in the window: "
            "Profiles, Set SMTP password)."
        )

    def client(self) -> NetcoreClient:
        """The API client, made on first use (raises :class:`SendError` when it cannot be)."""
        with self._lock:
            if self._client is None:
                p = self.profile
                try:
                    self._client = NetcoreClient(
                        p.api_base_url(),
                        self._secret("key"),
                        api_version=p.api_version,
                        timeout=p.timeout_s,
                        proxy=p.proxy or None,
                        verify=p.ca_bundle or True,
                        retry=self._retry,
                    )
                except ClientConfigError as exc:
                    raise SendError("config", str(exc)) from exc
            return self._client

    def smtp(self) -> SmtpTransport:
        """The SMTP transport, made on first use (raises :class:`SendError` when refused).

        The profile's CA bundle, when set, is what the relay's certificate is checked
        against, as for the API.
        """
        with self._lock:
            if self._smtp is None:
                p = self.profile
                password = self._secret("smtp") if p.smtp_user else ""
                self._smtp = smtp_transport_for(p, password, retry=self._retry)
            return self._smtp

    # -- prepare --

    def prepare(self, draft: Draft) -> Prepared:
        """Fresh tokens, one render, the request body(ies) and the checks on that render."""
        return prepare_for(self.profile, draft)

    # -- send --

    def send(
        self,
        prepared: Prepared,
        *,
        resend_of: int | None = None,
        allow_timeout_retry: bool = False,
        cancel: threading.Event | None = None,
        job_id: int | None = None,
    ) -> SendOutcome:
        """Send a prepared draft; every request is in the history before it goes out.

        Raises :class:`ChecksFailed` when the checks found a blocking problem and
        :class:`SendError` (e.g. :class:`MissingKeyError`) when sending cannot start; then
        nothing is recorded. Otherwise returns the answer of every request, whatever it was.
        """
        if prepared.blocking:
            raise ChecksFailed(prepared.problems)
        if prepared.transport is Transport.SMTP:
            return self._send_smtp(prepared, resend_of, cancel, job_id)
        client = self.client()
        sent: list[SentRequest] = []
        for request in prepared.requests:
            attempt_id = self._record(request, resend_of, job_id)
            if cancel is not None and cancel.is_set():
                result = _cancelled()
            else:
                try:
                    result = client.send(
                        request.body, allow_timeout_retry=allow_timeout_retry, cancel=cancel
                    )
                except BaseException as exc:
                    # Interrupted mid-request: it may have gone out. Leave no attempt pending.
                    self._abandon(attempt_id, exc)
                    raise
            self._complete(attempt_id, result)
            sent.append(SentRequest(attempt_id, result, _recipients(request.draft)))
        return SendOutcome(tuple(sent))

    def _send_smtp(
        self,
        prepared: Prepared,
        resend_of: int | None,
        cancel: threading.Event | None,
        job_id: int | None,
    ) -> SendOutcome:
        transport = self.smtp()
        messages = [build_mime(r.draft, r.draft.envelopes[0], prepared.html)
                    for r in prepared.requests]
        ids = [self._record(r, resend_of, job_id) for r in prepared.requests]
        try:
            results = transport.send_messages(messages, cancel=cancel)
        except BaseException as exc:
            for attempt_id in ids:
                self._abandon(attempt_id, exc)
            raise
        sent = []
        for attempt_id, request, result in zip(ids, prepared.requests, results, strict=True):
            self._complete(attempt_id, result)
            sent.append(SentRequest(attempt_id, result, _recipients(request.draft)))
        return SendOutcome(tuple(sent))

    def _record(
        self, request: PreparedRequest, resend_of: int | None, job_id: int | None
    ) -> int:
        p = self.profile
        return self.history.record_attempt(
            draft=request.draft,
            payload=request.payload,
            profile=p.name,
            transport=str(p.transport),
            api_version=str(p.api_version),
            endpoint=self.endpoint,
            resend_of=resend_of,
            job_id=job_id,
            # The body about to be sent is the payload serialised: stored as it is.
            payload_json=request.body,
        )

    def _complete(self, attempt_id: int, result: ApiResult) -> None:
        self.history.complete_attempt(
            attempt_id,
            outcome=result.outcome,
            status_code=result.status_code,
            meaning=result.meaning,
            message_id=result.message_id or "",
            response_body=result.response_body,
            latency_ms=result.latency_ms,
            error="" if result.ok else result.summary(),
            attempts=result.attempts,
        )

    def _abandon(self, attempt_id: int, exc: BaseException) -> None:
        try:
            self.history.complete_attempt(
                attempt_id,
                outcome=Outcome.UNKNOWN,
                status_code=None,
                meaning="Interrupted while sending: the message may have been sent. "
                "Check the history/events before resending.",
                latency_ms=None,
                error=f"{type(exc).__name__}: {exc}",
                attempts=1,
            )
        except Exception:  # the original exception matters more
            log.exception("Could not mark attempt %d as interrupted", attempt_id)

    # -- resend --

    def prepare_resend(self, attempt_id: int, *, to: str | None = None) -> Prepared:
        """The draft of attempt ``attempt_id`` prepared again (fresh tokens, fresh checks).

        With ``to``, that address replaces the To of every envelope (keeping the name of a
        single To recipient), for correcting a mistyped address.
        """
        try:
            entry = self.history.get(attempt_id)
        except KeyError:
            entry = None
        if entry is None:
            raise SendError("not_found", f"There is no attempt #{attempt_id} in the history.")
        draft: Draft = entry.draft
        if to is not None:
            draft = with_recipient(draft, to)
        return self.prepare(draft)

    def resend(
        self,
        attempt_id: int,
        *,
        to: str | None = None,
        allow_timeout_retry: bool = False,
        cancel: threading.Event | None = None,
    ) -> SendOutcome:
        """Send attempt ``attempt_id`` again as a new attempt linked to it."""
        prepared = self.prepare_resend(attempt_id, to=to)
        return self.send(
            prepared, resend_of=attempt_id, allow_timeout_retry=allow_timeout_retry,
            cancel=cancel,
        )


def smtp_transport_for(
    profile: Profile,
    password: str,
    *,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
) -> SmtpTransport:
    """The profile's SMTP transport: its relay, security setting and CA bundle.

    Raises :class:`SendError` (``config``) when the settings would expose the password or
    the CA bundle cannot be read.
    """
    context = _ca_bundle_context(profile.ca_bundle)
    try:
        return SmtpTransport(
            profile.smtp_host,
            profile.smtp_port,
            profile.smtp_user,
            password,
            profile.smtp_security,
            timeout=profile.timeout_s if timeout is None else timeout,
            ssl_context=context,
            retry=retry,
        )
    except SmtpSecurityError as exc:
        raise SendError("config", str(exc)) from exc


def _ca_bundle_context(ca_bundle: str) -> ssl.SSLContext | None:
    """TLS settings trusting the CA bundle file (``None``: the system's CAs).

    Like the API client with ``verify=<bundle>``, only the bundle's authorities are trusted
    then. Raises :class:`SendError` (``config``) when the file cannot be read.
    """
    if not ca_bundle:
        return None
    path = Path(ca_bundle).expanduser()
    try:
        return ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise SendError(
            "config",
            f"The profile's CA bundle {ca_bundle} cannot be read ({exc}): choose the "
            "certificate file of your organisation's certificate authority (PEM), or clear "
            "the CA bundle to use this computer's.",
        ) from exc


def with_recipient(draft: Draft, to: str) -> Draft:
    """``draft`` with ``to`` replacing the To of every envelope.

    The display name is kept when the envelope had exactly one To recipient (the person
    corrected a typo in the address, not the person).
    """
    address = to.strip()
    envelopes = []
    for env in draft.envelopes:
        name = env.to[0].name if len(env.to) == 1 else ""
        envelopes.append(replace(env, to=(Address(address, name),)))
    if not envelopes:
        envelopes.append(Envelope(to=(Address(address),)))
    return replace(draft, envelopes=tuple(envelopes))


def _recipients(draft: Draft) -> tuple[str, ...]:
    return tuple(a.email for a in draft.recipients())


def _cancelled() -> ApiResult:
    return ApiResult(
        ok=False,
        status_code=None,
        outcome=Outcome.CANCELLED,
        meaning="Cancelled before it was sent.",
    )


__all__ = [
    "ACCEPTED",
    "ChecksFailed",
    "MissingKeyError",
    "Prepared",
    "PreparedRequest",
    "SendError",
    "SendOutcome",
    "SendService",
    "SentRequest",
    "prepare_for",
    "split_envelopes",
    "with_recipient",
]
