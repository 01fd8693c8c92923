"""The offline sandbox: a Netcore-compatible HTTP API and SMTP relay on loopback.

``shared/netcore-api.md`` §9 describes what it must do. Start one from Python with::

    from netcore_desktop.sandbox import EmbeddedSandbox, SandboxConfig

    with EmbeddedSandbox(SandboxConfig(daily_limit=100)) as sandbox:
        print(sandbox.base_url, sandbox.api_key, sandbox.smtp_port)

or from the command line with ``netcore-desktop sandbox``. :class:`EmbeddedSandbox` is
imported on first use, so that reading the config (or building the command-line parser)
does not load the web server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netcore_desktop.sandbox.config import SandboxConfig, loopback_host

if TYPE_CHECKING:
    from netcore_desktop.sandbox.runner import UNCHANGED, EmbeddedSandbox

__all__ = ["UNCHANGED", "EmbeddedSandbox", "SandboxConfig", "loopback_host"]


def __getattr__(name: str) -> Any:
    if name in ("EmbeddedSandbox", "UNCHANGED"):
        from netcore_desktop.sandbox import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
