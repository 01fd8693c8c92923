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


# TEMPORARY until tests/conftest.py provides them.
@pytest.fixture
def sandbox_factory() -> Iterator[object]:
    from netcore_desktop.sandbox import SandboxConfig

    started: list[EmbeddedSandbox] = []

    def make(**config: object) -> EmbeddedSandbox:
        sb = EmbeddedSandbox(SandboxConfig(**config)).start()  # type: ignore[arg-type]
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(sandbox_factory: object) -> EmbeddedSandbox:
    return sandbox_factory()  # type: ignore[operator,no-any-return]
