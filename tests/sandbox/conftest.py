"""Helpers of the sandbox tests: an HTTP client on the sandbox and valid request bodies."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from netcore_desktop.sandbox import EmbeddedSandbox

#: The type of the ``sandbox_factory`` fixture (tests/conftest.py).
SandboxFactory = Callable[..., EmbeddedSandbox]


def payload(token: str | None = None, **changes: Any) -> dict[str, Any]:
    """A valid send-mail body (contract §3) with its own ``token_to``."""
    body: dict[str, Any] = {
        "from": {"email": "billing@mail.example.org", "name": "Example Billing"},
        "subject": "Invoice [%INVOICE_NO%] is ready",
        "content": [{"type": "html", "value": "<p>Hi [%FIRST_NAME%]</p>"}],
        "personalizations": [
            {
                "to": [{"email": "asha@example.net", "name": "Asha Rao"}],
                "attributes": {"FIRST_NAME": "Asha", "INVOICE_NO": "INV-1042"},
                "token_to": token or f"nd-{uuid.uuid4().hex}",
            }
        ],
        "tags": ["invoice"],
    }
    body.update(changes)
    return body


def v6(sandbox: EmbeddedSandbox) -> dict[str, str]:
    """The v6 auth header."""
    return {"Authorization": f"Bearer {sandbox.api_key}"}


def v5(sandbox: EmbeddedSandbox) -> dict[str, str]:
    """The v5 / v5.1 auth header."""
    return {"api_key": sandbox.api_key}


def fields(response: httpx.Response) -> list[str]:
    """The ``field`` of every error in a §4 error body (and check the body's shape)."""
    body = response.json()
    assert body["status"] == "error"
    assert body["data"] == []
    assert isinstance(body["message"], str) and body["message"]
    for err in body["error"]:
        assert set(err) == {"field", "message", "description"}
        assert err["message"]
    return [e["field"] for e in body["error"]]


@pytest.fixture
def api(sandbox: EmbeddedSandbox) -> Iterator[httpx.Client]:
    """A keep-alive client on the (reset) shared sandbox."""
    with httpx.Client(base_url=sandbox.base_url, timeout=30) as client:
        yield client
