"""Fixtures of the client, SMTP and sending tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from netcore_desktop.core.client import NetcoreClient
from netcore_desktop.sandbox import EmbeddedSandbox

from ._support import FAST_RETRY


@pytest.fixture
def client(sandbox: EmbeddedSandbox) -> Iterator[NetcoreClient]:
    """A v6 client for ``sandbox`` with fast retries."""
    with NetcoreClient(sandbox.base_url, sandbox.api_key, retry=FAST_RETRY) as c:
        yield c


@pytest.fixture
def keyring_service() -> str:
    """A keyring service name of its own, so tests never touch a real profile's key."""
    return f"netcore-desktop-test-{uuid.uuid4().hex[:8]}"

