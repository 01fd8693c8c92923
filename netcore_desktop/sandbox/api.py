"""The sandbox's HTTP side: a Netcore-compatible API on loopback (``shared/netcore-api.md``).

Endpoints (every response shape the contract leaves open is described in ``API.md``
beside this file):

- ``POST /v6/mail/send`` (``Authorization: Bearer KEY``), ``POST /v5.1/mail/send`` and
  ``POST /v5/mail/send`` (``api_key: KEY``): validated by
  :func:`netcore_desktop.core.validation.validate_payload`, the app's own definition of a
  valid request; answers 200, 202 (daily limit), 400, 401, 500 exactly as §4 describes.
- v6 templates and suppressions, v5.1 events, stats, template and suppression (§6).
- ``/sandbox/...``: the stored messages, fault settings, counters and a reset.

Every error, including 404, 405 and an unexpected failure, has the §4 error body
``{"data": [], "message", "status": "error", "error": [{field, message, description}]}``;
no traceback ever reaches a client.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import urllib.parse
import zlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from typing import Any, Final

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from netcore_desktop import __version__
from netcore_desktop.core.contract import (
    SANDBOX_MAX_BODY_BYTES,
    SEND_PATHS,
    ApiVersion,
    normalise_event,
    status_meaning,
)
from netcore_desktop.core.validation import FieldError, email_problem, validate_payload
from netcore_desktop.sandbox.faults import FaultError
from netcore_desktop.sandbox.service import EventQuery, SandboxService

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]

#: Past this many bytes of an oversized body the sandbox stops reading and closes the
#: connection; below it the body is read to its end, so the client sees the 400.
DRAIN_LIMIT_BYTES: Final = 4 * SANDBOX_MAX_BODY_BYTES

#: Most addresses or domains per suppression call (contract §6).
MAX_SUPPRESSIONS_PER_CALL: Final = 1000

#: Most events per ``/v5.1/events`` page.
MAX_EVENTS_PER_PAGE: Final = 1000

_TRANSPORT_KEY: Final = "netcore_sandbox.transport"
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
_DOMAIN_RE: Final = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$"
)
_URL_ESCAPE_RE: Final = re.compile(r"%[0-9A-Fa-f]{2}")
_AUTH_FIELDS: Final = {ApiVersion.V6: "Authorization", ApiVersion.V5_1: "api_key"}


class BadRequest(Exception):
    """A request the sandbox refuses; becomes the §4 error body."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.errors = [FieldError(field, message)]
        self.status = status


class JSONResponse(Response):
    """Compact UTF-8 JSON; text that cannot be UTF-8 (lone surrogates) is escaped instead."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """The body bytes."""
        try:
            return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def error_response(
    status: int,
    errors: list[FieldError],
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The contract's error body (§4) with ``status``."""
    if message is None:
        if status == 400 and errors:
            message = errors[0].message if len(errors) == 1 else (
                f"The request has {len(errors)} invalid fields."
            )
        else:
            message = status_meaning(status)
    body = {
        "data": [],
        "message": message,
        "status": "error",
        "error": [e.to_json() for e in errors],
    }
    return JSONResponse(body, status_code=status, headers=headers)


def ok(data: Any, status: int = 200, message: str = "OK", **extra: Any) -> JSONResponse:
    """A success body: ``{"data": data, "message": message, "status": "success", ...}``."""
    return JSONResponse(
        {"data": data, "message": message, "status": "success", **extra}, status_code=status
    )


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Turn refusals into 4xx bodies and any unexpected exception into a 500 body."""

    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except BadRequest as exc:
            return error_response(exc.status, exc.errors)
        except ClientDisconnect:
            return Response(status_code=499)  # nobody left to read it; uvicorn drops it
        except HTTPException:
            raise  # Starlette's own 404/405, answered by SandboxApp._http_error
        except Exception as exc:
            log.exception("The sandbox failed on %s %s", request.method, request.url.path)
            return error_response(
                500,
                [FieldError("server", f"The sandbox failed unexpectedly ({type(exc).__name__}).")],
            )

    return run


def _unescape_html(value: str) -> str:
    """Template HTML as sent: URL-encoded (contract §6) or plain; decode the former."""
    if "<" not in value and _URL_ESCAPE_RE.search(value):
        return urllib.parse.unquote(value)
    return value


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(name, f"'{raw}' is not a whole number.") from None
    if not low <= value <= high:
        raise BadRequest(name, f"Must be between {low} and {high}.")
    return value


def _date_param(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(name, f"'{raw}' is not a date written YYYY-MM-DD.") from None


class SandboxApp:
    """The ASGI application: Starlette routes behind a thin outer layer.

    The outer layer counts answers per status for ``/sandbox/stats``, refuses requests
    whose ``Host`` is not a loopback name (a web page cannot rebind its domain onto the
    sandbox) and keeps uvicorn's transport at hand, which is the only way to close a
    connection without answering (the ``drop_rate`` fault).
    """

    def __init__(
        self,
        service: SandboxService,
        api_key: str,
        smtp_port: int = 0,
        smtps_port: int | None = None,
    ) -> None:
        self.service = service
        self.faults = service.faults
        self._key = api_key.encode("utf-8")
        self.smtp_port = smtp_port
        #: The implicit-TLS SMTP port; ``None`` when the relay has no TLS.
        self.smtps_port = smtps_port
        g = _guarded
        #: The send endpoints by path: POSTs to them skip Starlette's routing (see __call__).
        self._send_routes: dict[str, Endpoint] = {
            path: g(self._send_endpoint(version)) for version, path in SEND_PATHS.items()
        }
        routes = [
            Route("/", g(self.info), methods=["GET"]),
            *(
                Route(path, endpoint, methods=["POST"])
                for path, endpoint in self._send_routes.items()
            ),
            Route("/v6/templates", g(self.list_templates), methods=["GET"]),
            Route("/v6/templates", g(self.create_template), methods=["POST"]),
            Route("/v6/templates/{template_id:int}", g(self.get_template), methods=["GET"]),
            Route("/v6/templates/{template_id:int}", g(self.update_template), methods=["PUT"]),
            Route(
                "/v6/suppression/{kind:str}",
                g(self.suppression_v6),
                methods=["GET", "POST", "DELETE"],
            ),
            Route("/v5.1/events", g(self.events), methods=["GET"]),
            Route("/v5.1/stats", g(self.stats_v51), methods=["GET"]),
            Route("/v5.1/template", g(self.template_v51), methods=["GET"]),
            Route("/v5.1/suppression", g(self.suppression_v51), methods=["POST", "DELETE"]),
            Route("/sandbox/messages", g(self.list_messages), methods=["GET"]),
            Route("/sandbox/messages", g(self.clear_messages), methods=["DELETE"]),
            Route("/sandbox/messages/{message_id:str}", g(self.get_message), methods=["GET"]),
            Route("/sandbox/faults", g(self.get_faults), methods=["GET"]),
            Route("/sandbox/faults", g(self.set_faults), methods=["POST"]),
            Route("/sandbox/stats", g(self.stats), methods=["GET"]),
            Route("/sandbox/reset", g(self.reset), methods=["POST"]),
        ]
        self.app = Starlette(
            routes=routes, exception_handlers={HTTPException: self._http_error}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # uvicorn's ``send`` is a bound method of its request cycle, which holds the transport.
        scope[_TRANSPORT_KEY] = getattr(getattr(send, "__self__", None), "transport", None)
        counters = self.service.counters

        async def counting_send(message: Message) -> None:
            # 499 stands for "no answer" (a dropped or vanished connection): not counted here.
            if message["type"] == "http.response.start" and message["status"] != 499:
                counters[str(message["status"])] += 1
            await send(message)

        host = _host_of(scope)
        if host not in _LOOPBACK_HOSTS:
            refusal = error_response(
                400, [FieldError("Host", "The sandbox only answers requests for 127.0.0.1.")]
            )
            await refusal(scope, receive, counting_send)
            return
        endpoint = self._send_routes.get(scope["path"]) if scope["method"] == "POST" else None
        if endpoint is not None:
            # The hot path: a send does not need Starlette's routing and middleware (which
            # cost a measurable share of the sandbox's time per send); _guarded already
            # turns every failure into the contract's error body.
            response = await endpoint(Request(scope, receive))
            await response(scope, receive, counting_send)
            return
        await self.app(scope, receive, counting_send)

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        path = request.url.path
        if exc.status_code == 404:
            err = FieldError("path", f"There is no endpoint at {path}.")
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            err = FieldError(
                "method", f"{request.method} is not allowed on {path}; use {allowed}."
            )
        else:
            err = FieldError("request", str(exc.detail))
        return error_response(exc.status_code, [err], headers=exc.headers)

    # -- shared request handling ------------------------------------------------------------

    def _check_key(self, request: Request, version: ApiVersion) -> None:
        """Raise a 401 unless the request carries the sandbox key the way ``version`` wants."""
        if version is ApiVersion.V6:
            field = "Authorization"
            value = request.headers.get("authorization")
            if value is None:
                raise BadRequest(
                    field, "The API key is missing: send 'Authorization: Bearer <key>'.", 401
                )
            scheme, _, key = value.strip().partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                raise BadRequest(field, "Send the key as 'Authorization: Bearer <key>'.", 401)
            key = key.strip()
        else:
            field = "api_key"
            found = request.headers.get("api_key")
            if found is None:
                raise BadRequest(field, "The API key is missing: send the 'api_key' header.", 401)
            key = found.strip()
        if not hmac.compare_digest(key.encode("utf-8", "replace"), self._key):
            raise BadRequest(field, "The API key is invalid.", 401)

    async def _latency(self) -> None:
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)

    async def _read_body(self, request: Request) -> bytes:
        """The raw body, or a 400 naming ``body`` when it is over the limit.

        An oversized body is still read to its end (up to :data:`DRAIN_LIMIT_BYTES`), because
        a client that is still writing would otherwise see a reset instead of the answer.
        """
        limit = SANDBOX_MAX_BODY_BYTES
        too_big = False
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            too_big = True
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                too_big = True
            if too_big:
                if size > DRAIN_LIMIT_BYTES:
                    break
                continue
            chunks.append(chunk)
        if too_big:
            raise BadRequest("body", f"The body is larger than {limit // (1024 * 1024)} MiB.")
        return b"".join(chunks)

    def _decode_json(self, request: Request, raw: bytes, *, form_ok: bool = False) -> tuple[
        Any, str
    ]:
        """The parsed body and its text, after the Content-Type and Content-Encoding checks."""
        ctype = request.headers.get("content-type", "")
        media, _, params = ctype.partition(";")
        media = media.strip().lower()
        is_form = form_ok and media == "application/x-www-form-urlencoded"
        if media != "application/json" and not is_form:
            expected = "application/json"
            if form_ok:
                expected += " or application/x-www-form-urlencoded"
            shown = ctype or "nothing"
            raise BadRequest("Content-Type", f"Send {expected}, not {shown}.")
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
                "utf-8",
                "utf8",
            ):
                raise BadRequest("Content-Type", "Only UTF-8 text is accepted (charset=utf-8).")
        data = self._decompress(request, raw)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("body", "The body is not UTF-8 text.") from None
        if text.startswith("\ufeff"):
            text = text[1:]
        if is_form:
            return dict(urllib.parse.parse_qsl(text, keep_blank_values=True)), text
        try:
            return json.loads(text, parse_constant=_refuse_constant), text
        except RecursionError:
            raise BadRequest("body", "The JSON is nested too deeply.") from None
        except ValueError as exc:
            raise BadRequest("body", f"The body is not valid JSON: {exc}") from None

    @staticmethod
    def _decompress(request: Request, raw: bytes) -> bytes:
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding in ("", "identity"):
            return raw
        if encoding not in ("gzip", "x-gzip"):
            raise BadRequest("Content-Encoding", f"'{encoding}' is not supported; use gzip.")
        limit = SANDBOX_MAX_BODY_BYTES
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            # max_length stops a small "zip bomb" from inflating past the limit in memory.
            data = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise BadRequest("Content-Encoding", "The body is not valid gzip data.") from None
        if len(data) > limit:
            raise BadRequest(
                "body", f"The body is larger than {limit // (1024 * 1024)} MiB once unzipped."
            )
        if not inflater.eof:
            raise BadRequest("Content-Encoding", "The gzip data is cut short.")
        return data

    async def _read_object(self, request: Request, *, form_ok: bool = False) -> dict[str, Any]:
        raw = await self._read_body(request)
        value, _ = self._decode_json(request, raw, form_ok=form_ok)
        if not isinstance(value, dict):
            raise BadRequest("body", "The request body must be a JSON object.")
        return value

    # -- sending ----------------------------------------------------------------------------

    def _send_endpoint(self, version: ApiVersion) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            return await self.send_mail(request, version)

        return endpoint

    async def send_mail(self, request: Request, version: ApiVersion) -> Response:
        """``POST /v6|v5.1|v5/mail/send`` (contract §2-§4, §9)."""
        await self._latency()
        raw = await self._read_body(request)
        decision = self.faults.decide()
        forced: str | None = None
        if decision.action == "drop":
            return await self._drop(request)
        if decision.action == "fail":
            return error_response(
                500, [FieldError("server", "Injected failure (sandbox fail_rate).")]
            )
        if decision.action == "status":
            if decision.status == 200:
                forced = "sent"
            elif decision.status == 202:
                forced = "queued"
            else:
                return self._forced_error(decision.status, version)
        self._check_key(request, version)
        payload, text = self._decode_json(request, raw)
        errors = validate_payload(payload, version)
        if errors:
            return error_response(400, errors)
        template_id = payload.get("template_id")
        if template_id is not None and template_id not in self.service.template_ids:
            raise BadRequest("template_id", f"There is no template with id {template_id}.")
        headers = {
            k: v for k, v in request.headers.items() if k not in ("authorization", "api_key")
        }
        # No await between admitting (the daily count) and recording: they stay in order.
        accepted = self.service.admit(force=forced)
        rec = await self.service.record_api(
            api_version=str(version), body=text, payload=payload, headers=headers,
            accepted=accepted,
        )
        if accepted:
            return JSONResponse(
                {"data": {"message_id": rec.message_id}, "message": "OK", "status": "success"}
            )
        return JSONResponse(
            {"data": {"message_id": rec.message_id}, "message": "Queued", "status": "queued"},
            status_code=202,
        )

    async def _drop(self, request: Request) -> Response:
        transport = request.scope.get(_TRANSPORT_KEY)
        self.service.counters["dropped"] += 1
        if transport is None:  # not under uvicorn: the closest thing is a bare 500
            return error_response(500, [FieldError("server", "Injected dropped connection.")])
        transport.abort()
        # Let the server notice the closed connection, so that it writes nothing more.
        await asyncio.sleep(0)
        return Response(status_code=499)

    @staticmethod
    def _forced_error(status: int, version: ApiVersion) -> Response:
        if status in (401, 403):
            field = _AUTH_FIELDS.get(version, "api_key")
        elif status >= 500:
            field = "server"
        else:
            field = "request"
        headers = {"Retry-After": "1"} if status in (429, 503) else None
        message = f"Forced status {status} (sandbox force_status): {status_meaning(status)}"
        return error_response(status, [FieldError(field, message)], headers=headers)

    # -- templates (v6) ---------------------------------------------------------------------

    async def list_templates(self, request: Request) -> Response:
        """``GET /v6/templates?page=&per_page=``."""
        await self._latency()
        self._check_key(request, ApiVersion.V6)
        page = _int_param(request, "page", 1, 1, 1_000_000)
        per_page = _int_param(request, "per_page", 20, 1, 100)
        items, total = await run_in_threadpool(self.service.templates, page, per_page)
        return ok({"templates": items, "page": page, "per_page": per_page, "total": total})

    async def get_template(self, request: Request) -> Response:
        """``GET /v6/templates/{id}``."""
        await self._latency()
        self._check_key(request, ApiVersion.V6)
        return await self._template_answer(int(request.path_params["template_id"]))

    async def _template_answer(self, template_id: int) -> Response:
        found = await run_in_threadpool(self.service.template, template_id)
        if found is None:
            raise BadRequest("template_id", f"There is no template with id {template_id}.", 404)
        return ok(found)

    @staticmethod
    def _template_fields(body: dict[str, Any], *, creating: bool) -> dict[str, str]:
        aliases = {
            "name": ("name", "template_name", "templateName"),
            "subject": ("subject", "template_subject"),
            "html": ("html", "content", "template_content", "html_content"),
        }
        out: dict[str, str] = {}
        for key, names in aliases.items():
            for name in names:
                if name in body:
                    value = body[name]
                    if not isinstance(value, str):
                        raise BadRequest(name, "Must be text.")
                    out[key] = _unescape_html(value) if key == "html" else value
                    break
        if creating or "name" in out:
            if not out.get("name", "").strip():
                raise BadRequest("name", "The template needs a name.")
            if len(out["name"]) > 255:
                raise BadRequest("name", "The name must be at most 255 characters.")
        if (creating or "html" in out) and not out.get("html", "").strip():
            raise BadRequest("html", "The template needs its HTML.")
        if not creating and not out:
            raise BadRequest("body", "Send at least one of name, subject or html.")
        return out

    async def create_template(self, request: Request) -> Response:
        """``POST /v6/templates`` (JSON or form; URL-encoded HTML is decoded) -> 201."""
        await self._latency()
        self._check_key(request, ApiVersion.V6)
        fields = self._template_fields(
            await self._read_object(request, form_ok=True), creating=True
        )
        created = await self.service.create_template(
            fields["name"], fields.get("subject", ""), fields["html"]
        )
        return ok(created, status=201, message="Created")

    async def update_template(self, request: Request) -> Response:
        """``PUT /v6/templates/{id}`` (only the fields given change)."""
        await self._latency()
        self._check_key(request, ApiVersion.V6)
        template_id = int(request.path_params["template_id"])
        fields = self._template_fields(
            await self._read_object(request, form_ok=True), creating=False
        )
        updated = await self.service.update_template(template_id, fields)
        if updated is None:
            raise BadRequest("template_id", f"There is no template with id {template_id}.", 404)
        return ok(updated)

    # -- suppressions -----------------------------------------------------------------------

    @staticmethod
    def _suppression_values(body: dict[str, Any], kind: str) -> list[str]:
        plural = kind + "s"
        field = plural if plural in body else kind if kind in body else plural
        value = body.get(field)
        if isinstance(value, str):
            items: list[Any] = [v.strip() for v in value.split(",") if v.strip()]
        elif isinstance(value, list):
            items = value
        else:
            raise BadRequest(field, f"Send a list of {plural} (or one comma-separated text).")
        if not items:
            raise BadRequest(field, f"Name at least one {kind}.")
        if len(items) > MAX_SUPPRESSIONS_PER_CALL:
            raise BadRequest(field, f"At most {MAX_SUPPRESSIONS_PER_CALL} {plural} per call.")
        out = []
        for i, item in enumerate(items):
            here = f"{field}[{i}]"
            if not isinstance(item, str):
                raise BadRequest(here, "Must be text.")
            item = item.strip()
            if kind == "email":
                problem = email_problem(item)
                if problem:
                    raise BadRequest(here, problem)
            elif not _DOMAIN_RE.match(item.lower()):
                raise BadRequest(here, f"'{item}' is not a domain name.")
            out.append(item)
        return out

    async def suppression_v6(self, request: Request) -> Response:
        """``GET/POST/DELETE /v6/suppression/emails`` and ``.../domains``."""
        await self._latency()
        kinds = {"emails": "email", "domains": "domain"}
        kind = kinds.get(request.path_params["kind"])
        if kind is None:
            raise BadRequest("path", f"There is no endpoint at {request.url.path}.", 404)
        self._check_key(request, ApiVersion.V6)
        if request.method == "GET":
            items = await run_in_threadpool(self.service.suppressions, kind)
            return ok({kind + "s": items, "total": len(items)})
        values = self._suppression_values(await self._read_object(request), kind)
        if request.method == "POST":
            return ok({"added": await self.service.suppress(kind, values)})
        return ok({"removed": await self.service.unsuppress(kind, values)})

    async def suppression_v51(self, request: Request) -> Response:
        """``POST/DELETE /v5.1/suppression`` with ``{"email": "a@x,b@y"}``."""
        await self._latency()
        self._check_key(request, ApiVersion.V5_1)
        values = self._suppression_values(await self._read_object(request), "email")
        if request.method == "POST":
            return ok({"added": await self.service.suppress("email", values)})
        return ok({"removed": await self.service.unsuppress("email", values)})

    # -- v5.1 reads -------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        """``GET /v5.1/events`` (contract §6, §8): synthesised delivery events."""
        await self._latency()
        self._check_key(request, ApiVersion.V5_1)
        start = _date_param(request, "startdate")
        end = _date_param(request, "enddate")
        if start and end and end < start:
            raise BadRequest("enddate", "The end date is before the start date.")
        raw_names = request.query_params.get("events", "")
        names = frozenset(normalise_event(n) for n in raw_names.split(",") if n.strip())
        sort = request.query_params.get("sort", "asc").lower()
        if sort not in ("asc", "desc"):
            raise BadRequest("sort", "Must be asc or desc.")
        query = EventQuery(
            start=start,
            end=end,
            names=names or None,
            email=request.query_params.get("email") or None,
            xapiheader=request.query_params.get("xapiheader") or None,
            limit=_int_param(request, "limit", 100, 1, MAX_EVENTS_PER_PAGE),
            offset=_int_param(request, "offset", 0, 0, 1 << 31),
            descending=sort == "desc",
        )
        found, total = await run_in_threadpool(self.service.events, query)
        return ok(found, total=total, limit=query.limit, offset=query.offset)

    async def stats_v51(self, request: Request) -> Response:
        """``GET /v5.1/stats?startdate=&enddate=&aggregated_by=day|month|all``."""
        await self._latency()
        self._check_key(request, ApiVersion.V5_1)
        by = request.query_params.get("aggregated_by", "day").lower()
        if by not in ("day", "month", "all"):
            raise BadRequest("aggregated_by", "Must be day, month or all.")
        start = _date_param(request, "startdate")
        end = _date_param(request, "enddate")
        rows = await run_in_threadpool(self.service.stats, start, end, by)
        return ok(rows)

    async def template_v51(self, request: Request) -> Response:
        """``GET /v5.1/template?template_id=N``."""
        await self._latency()
        self._check_key(request, ApiVersion.V5_1)
        raw = request.query_params.get("template_id", "")
        if not raw.isdigit() or int(raw) <= 0:
            raise BadRequest("template_id", "Give the template id as a positive whole number.")
        return await self._template_answer(int(raw))

    # -- /sandbox control -------------------------------------------------------------------

    async def info(self, request: Request) -> Response:
        """``GET /``: what this service is and where its parts listen."""
        return JSONResponse(
            {
                "service": "netcore-desktop sandbox",
                "version": __version__,
                "send_paths": ["/v6/mail/send", "/v5.1/mail/send", "/v5/mail/send"],
                "smtp_port": self.smtp_port,
                "smtps_port": self.smtps_port,
                "smtp_starttls": self.smtps_port is not None,
            }
        )

    async def list_messages(self, request: Request) -> Response:
        """``GET /sandbox/messages?token=&limit=&offset=`` (newest first)."""
        token = request.query_params.get("token")
        limit = (
            _int_param(request, "limit", 0, 1, 1 << 31)
            if request.query_params.get("limit")
            else None
        )
        offset = _int_param(request, "offset", 0, 0, 1 << 31)
        found = await run_in_threadpool(self.service.messages, token, limit, offset)
        return JSONResponse({"messages": found, "count": len(found)})

    async def get_message(self, request: Request) -> Response:
        """``GET /sandbox/messages/{message_id}``."""
        message_id = request.path_params["message_id"]
        found = await run_in_threadpool(self.service.message, message_id)
        if found is None:
            raise BadRequest("message_id", f"No stored message has id {message_id}.", 404)
        return JSONResponse(found)

    async def clear_messages(self, request: Request) -> Response:
        """``DELETE /sandbox/messages``."""
        deleted = await self.service.clear_messages()
        return JSONResponse({"deleted": deleted, "status": "success"})

    async def get_faults(self, request: Request) -> Response:
        """``GET /sandbox/faults``."""
        return JSONResponse(self.faults.snapshot())

    async def set_faults(self, request: Request) -> Response:
        """``POST /sandbox/faults`` with any of the fault settings; answers the new state."""
        body = await self._read_object(request)
        try:
            return JSONResponse(self.faults.update(body))
        except FaultError as exc:
            raise BadRequest(exc.field, exc.message) from None

    async def stats(self, request: Request) -> Response:
        """``GET /sandbox/stats``: answers per status and what the store holds."""
        stored = await run_in_threadpool(self.service.message_count)
        return JSONResponse(
            {
                "responses": dict(self.service.counters),
                "stored_messages": stored,
                "sent_today": self.service.day_count,
                "daily_limit": self.faults.daily_limit,
                "store": {
                    "commits": self.service.store.commits,
                    "writes": self.service.store.jobs,
                },
            }
        )

    async def reset(self, request: Request) -> Response:
        """``POST /sandbox/reset``: forget messages, templates, suppressions and faults."""
        await self.service.reset()
        return JSONResponse({"status": "success"})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _host_of(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"host":
            host = bytes(value).decode("latin-1").strip().lower()
            if host.startswith("["):
                return host[: host.find("]") + 1]
            name: str = host.rpartition(":")[0] if ":" in host else host
            return name
    # HTTP/1.0 without Host: the socket it came in on is loopback anyway.
    return "127.0.0.1"
