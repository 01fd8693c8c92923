"""``netcore-desktop sandbox``: run the offline sandbox in the foreground.

It prints where the API and the SMTP relay (and its SMTPS port, when given a TLS certificate
and key) listen and with which credentials, then runs until Ctrl+C (SIGINT) or SIGTERM, and
stops cleanly: requests in flight are answered and stored before it exits with status 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

from netcore_desktop.sandbox.config import (
    DEFAULT_API_KEY,
    DEFAULT_SMTP_PASSWORD,
    DEFAULT_SMTP_USER,
    SandboxConfig,
    loopback_host,
)

log = logging.getLogger(__name__)


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535 (0 picks a free port)")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("cannot be negative")
    return value


def _host(text: str) -> str:
    try:
        return loopback_host(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_sandbox_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``sandbox`` subcommand on ``subparsers`` (from ``add_subparsers``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sandbox",
        help="run the offline Netcore-compatible sandbox (HTTP API + SMTP relay) on loopback",
        description=(
            "Run the offline sandbox in the foreground on 127.0.0.1 until Ctrl+C or SIGTERM."
        ),
    )
    parser.add_argument(
        "--host", type=_host, default="127.0.0.1", help="loopback address (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=_port, default=0, help="HTTP port (0 = a free port)")
    parser.add_argument(
        "--smtp-port", type=_port, default=0, help="SMTP relay port (0 = a free port)"
    )
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the API key it accepts")
    parser.add_argument("--smtp-user", default=DEFAULT_SMTP_USER, help="SMTP AUTH user name")
    parser.add_argument(
        "--smtp-password", default=DEFAULT_SMTP_PASSWORD, help="SMTP AUTH password"
    )
    parser.add_argument(
        "--daily-limit",
        type=_count,
        default=None,
        help="accepted sends per UTC day before sends answer 202 Queued (default: no limit)",
    )
    parser.add_argument(
        "--fail-rate", type=_rate, default=0.0, help="fraction of sends answering 500"
    )
    parser.add_argument(
        "--latency-ms", type=_count, default=0, help="delay added to every API answer"
    )
    parser.add_argument(
        "--drop-rate",
        type=_rate,
        default=0.0,
        help="fraction of sends (and SMTP connections) closed without an answer",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for the random faults")
    parser.add_argument(
        "--data-dir",
        default=None,
        help="directory for the message store (default: a temporary one, removed on exit)",
    )
    parser.add_argument(
        "--smtp-tls-cert",
        metavar="PATH",
        default=None,
        help="PEM certificate for the SMTP relay: with --smtp-tls-key it offers STARTTLS "
        "and listens for implicit TLS (SMTPS) too",
    )
    parser.add_argument(
        "--smtp-tls-key", metavar="PATH", default=None, help="PEM key of --smtp-tls-cert"
    )
    parser.add_argument(
        "--smtps-port",
        type=_port,
        default=None,
        help="implicit-TLS SMTP port (0 = a free port, the default); needs the TLS flags",
    )
    parser.set_defaults(handler=run_sandbox)
    return parser


def run_sandbox(args: argparse.Namespace) -> int:
    """Run the sandbox described by ``args`` until SIGINT or SIGTERM; return the exit code."""
    from netcore_desktop.sandbox.runner import EmbeddedSandbox

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.smtps_port is not None and not (args.smtp_tls_cert and args.smtp_tls_key):
        print(
            "netcore-desktop sandbox: --smtps-port needs --smtp-tls-cert and --smtp-tls-key",
            file=sys.stderr,
        )
        return 2
    try:
        config = SandboxConfig(
            host=args.host,
            port=args.port,
            smtp_port=args.smtp_port,
            api_key=args.api_key,
            smtp_user=args.smtp_user,
            smtp_password=args.smtp_password,
            daily_limit=args.daily_limit,
            fail_rate=args.fail_rate,
            latency_ms=args.latency_ms,
            drop_rate=args.drop_rate,
            data_dir=args.data_dir,
            seed=args.seed,
            smtp_tls_cert=args.smtp_tls_cert,
            smtp_tls_key=args.smtp_tls_key,
            smtps_port=args.smtps_port or 0,
        )
    except ValueError as exc:
        print(f"netcore-desktop sandbox: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    sandbox = EmbeddedSandbox(config)
    try:
        try:
            sandbox.start()
        except (OSError, RuntimeError, ValueError) as exc:
            print(f"netcore-desktop sandbox: could not start: {exc}", file=sys.stderr)
            return 1
        print(f"Netcore sandbox API:  {sandbox.base_url}", flush=False)
        print(f"API key:              {sandbox.api_key}")
        starttls = " (STARTTLS)" if sandbox.smtp_tls else ""
        print(f"SMTP relay:           {sandbox.host}:{sandbox.smtp_port}{starttls}")
        if sandbox.smtps_port is not None:
            print(f"SMTPS (implicit TLS): {sandbox.host}:{sandbox.smtps_port}")
        print(f"SMTP user / password: {sandbox.smtp_user} / {sandbox.smtp_password}")
        print(f"Store:                {sandbox.db_path}")
        print("Press Ctrl+C to stop.", flush=True)
        # A timed wait, so that the main thread wakes up to run the signal handler.
        while not stop.wait(0.5):
            if not sandbox.running:
                print("netcore-desktop sandbox: the server stopped unexpectedly", file=sys.stderr)
                return 1
    finally:
        sandbox.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("Sandbox stopped.", flush=True)
    return 0
