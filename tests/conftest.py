"""Fixtures shared by every test folder: a real sandbox on loopback (no Qt here).

- ``sandbox_server`` (session): one :class:`EmbeddedSandbox` for the whole run, with its
  store in a temporary directory.
- ``sandbox`` (per test): that same sandbox, reset first (no messages, templates,
  suppressions or counters; fault settings back to none), so tests cannot see each other.
- ``sandbox_factory`` (per test): ``sandbox_factory(**SandboxConfig fields)`` or
  ``sandbox_factory(config)`` starts a sandbox of its own (store under ``tmp_path``); all
  of them are stopped after the test.
- ``tls`` (session): a test CA and a server certificate for 127.0.0.1 and localhost
  (:mod:`tests._tls`); ``tls_sandbox`` (per test): a sandbox whose SMTP relay uses that
  certificate (STARTTLS and an implicit-TLS port), started once and reset for each test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netcore_desktop.sandbox import EmbeddedSandbox, SandboxConfig
from tests._tls import Tls, make_tls

#: The type of the ``sandbox_factory`` fixture.
SandboxFactory = Callable[..., EmbeddedSandbox]


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSandbox]:
    """One sandbox for the whole test run (use ``sandbox`` to get it reset)."""
    sandbox = EmbeddedSandbox(SandboxConfig(data_dir=tmp_path_factory.mktemp("sandbox")))
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(sandbox_server: EmbeddedSandbox) -> EmbeddedSandbox:
    """The shared sandbox, emptied and with no faults, for this test alone."""
    if not sandbox_server.running:  # a test stopped it: bring it back for the next ones
        sandbox_server.start()
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def sandbox_factory(tmp_path: Path) -> Iterator[SandboxFactory]:
    """Start sandboxes with their own settings; every one is stopped after the test."""
    started: list[EmbeddedSandbox] = []

    def make(config: SandboxConfig | None = None, **overrides: Any) -> EmbeddedSandbox:
        if config is None:
            overrides.setdefault("data_dir", tmp_path / f"sandbox-{len(started)}")
            config = SandboxConfig(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        sandbox = EmbeddedSandbox(config)
        sandbox.start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A test CA and a server certificate it signed for 127.0.0.1 and localhost."""
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tls_sandbox_server(
    tls: Tls, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedSandbox]:
    """One sandbox whose SMTP relay speaks TLS with ``tls``'s certificate."""
    config = SandboxConfig(smtp_tls_cert=tls.cert, smtp_tls_key=tls.key,
                           data_dir=tmp_path_factory.mktemp("tls-sandbox"))
    with EmbeddedSandbox(config) as sandbox:
        yield sandbox


@pytest.fixture
def tls_sandbox(tls_sandbox_server: EmbeddedSandbox) -> EmbeddedSandbox:
    """The TLS sandbox, emptied for this test."""
    tls_sandbox_server.reset()
    return tls_sandbox_server
