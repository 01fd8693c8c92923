"""Settings of the offline sandbox (``shared/netcore-api.md`` §9).

:class:`SandboxConfig` is what the command line, the desktop app and the tests fill in to
start a sandbox. It only ever binds a loopback address: :func:`loopback_host` refuses
anything else, because the sandbox takes any request from anyone who can reach it.

Given a certificate and key (:attr:`SandboxConfig.smtp_tls_cert`/``smtp_tls_key``), the
SMTP relay also speaks TLS: STARTTLS on its port and implicit TLS on an SMTPS port, so the
app's encrypted paths can be rehearsed and tested against it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

#: The sandbox's default API key, SMTP user and SMTP password (printed on start).
DEFAULT_API_KEY = "sandbox-key"
DEFAULT_SMTP_USER = "sandbox"
DEFAULT_SMTP_PASSWORD = "sandbox-password"


def loopback_host(host: str) -> str:
    """``host`` as an address to bind, or ``ValueError`` when it is not a loopback address.

    ``localhost`` is accepted and bound as ``127.0.0.1`` so that the sandbox never depends
    on what the resolver says ``localhost`` is.
    """
    text = host.strip().strip("[]")
    if text.lower() == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(
            f"The sandbox only listens on loopback addresses, not {host!r}."
        ) from None
    if not address.is_loopback:
        raise ValueError(f"The sandbox only listens on loopback addresses, not {host!r}.")
    return str(address)


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, not {value!r}.")


@dataclass
class SandboxConfig:
    """How to start a sandbox. Port 0 picks a free port; ``data_dir`` ``None`` uses a temp dir.

    The key and the SMTP password are left out of ``repr`` so that a logged config never
    shows them.
    """

    host: str = "127.0.0.1"
    port: int = 0
    smtp_port: int = 0
    api_key: str = field(default=DEFAULT_API_KEY, repr=False)
    smtp_user: str = DEFAULT_SMTP_USER
    smtp_password: str = field(default=DEFAULT_SMTP_PASSWORD, repr=False)
    #: Accepted sends per UTC day before sends answer 202 "Queued"; ``None`` = no limit.
    daily_limit: int | None = None
    #: Fraction of send calls answering 500.
    fail_rate: float = 0.0
    #: Delay added before every API answer, in milliseconds.
    latency_ms: int = 0
    #: Fraction of send calls whose connection is closed without an answer (and of SMTP
    #: connections, closed before the greeting).
    drop_rate: float = 0.0
    #: Where the SQLite store lives; ``None`` = a temporary directory removed on stop.
    data_dir: str | Path | None = None
    #: Seed for the random faults, so that a run can be repeated exactly.
    seed: int | None = None
    #: PEM certificate (chain) of the SMTP relay; with ``smtp_tls_key`` it turns TLS on:
    #: STARTTLS on ``smtp_port`` and implicit TLS on ``smtps_port``.
    smtp_tls_cert: str | Path | None = None
    #: PEM private key of ``smtp_tls_cert`` (unencrypted).
    smtp_tls_key: str | Path | None = None
    #: The implicit-TLS (SMTPS) port, only used with a certificate and key; 0 = a free port.
    smtps_port: int = 0

    @property
    def smtp_tls(self) -> bool:
        """Whether the SMTP relay speaks TLS (a certificate and key were given)."""
        return self.smtp_tls_cert is not None

    def __post_init__(self) -> None:
        self.host = loopback_host(self.host)
        for name in ("port", "smtp_port", "smtps_port"):
            value = getattr(self, name)
            if not 0 <= value <= 65535:
                raise ValueError(f"{name} must be between 0 and 65535, not {value!r}.")
        if not self.api_key:
            raise ValueError("The API key cannot be empty.")
        if not self.smtp_user or not self.smtp_password:
            raise ValueError("The SMTP user and password cannot be empty.")
        if self.daily_limit is not None and self.daily_limit < 0:
            raise ValueError("daily_limit cannot be negative.")
        _check_rate("fail_rate", self.fail_rate)
        _check_rate("drop_rate", self.drop_rate)
        if self.latency_ms < 0:
            raise ValueError("latency_ms cannot be negative.")
        # An empty path is as good as none (e.g. an unset environment variable).
        self.smtp_tls_cert = self.smtp_tls_cert or None
        self.smtp_tls_key = self.smtp_tls_key or None
        if (self.smtp_tls_cert is None) != (self.smtp_tls_key is None):
            raise ValueError(
                "The SMTP relay's TLS needs both a certificate and its key file."
            )
        if self.smtps_port and not self.smtp_tls:
            raise ValueError(
                "smtps_port needs a TLS certificate and key (smtp_tls_cert, smtp_tls_key)."
            )
