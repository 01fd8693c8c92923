"""Command-line entry point: the window by default, or one of the subcommands.

Each subcommand lives in its own module and is imported only when used, so that
``netcore-desktop sandbox`` never loads Qt and the window never loads the CLI's code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from netcore_desktop import __version__


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="netcore-desktop",
        description="Compose, preview, send and resend email through Netcore.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="open the window on an embedded offline sandbox (no account needed)",
    )
    parser.add_argument("--profile", help="open the window on this profile")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    from netcore_desktop.sandbox.cli import add_sandbox_parser

    add_sandbox_parser(sub)
    try:
        from netcore_desktop.cli import add_cli_parsers
    except ImportError:  # the sending commands are optional in a trimmed build
        pass
    else:
        add_cli_parsers(sub)
    return parser


def _window_args(argv: Sequence[str]) -> argparse.Namespace | None:
    """The window's options when ``argv`` holds nothing else (no subcommand, no ``--help``).

    The full parser imports every subcommand's module (~35 ms); opening the window, the
    common case, does not need them.
    """
    parser = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    parser.add_argument("--sandbox", action="store_true")
    parser.add_argument("--profile")
    try:
        args, rest = parser.parse_known_args(list(argv))
    except argparse.ArgumentError:
        return None  # the full parser reports it
    return None if rest else args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named in ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in == ["--preview-helper"]:
        # The window's preview helper process, in a frozen build (render_process.helper_command).
        from netcore_desktop.ui.render_process import main as preview_helper

        preview_helper()
        return 0
    window = _window_args(args_in)
    if window is not None:
        from netcore_desktop.ui.app import run_app

        return run_app(sandbox=bool(window.sandbox), profile=window.profile)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is not None:
        code: int = handler(args)
        return code
    from netcore_desktop.ui.app import run_app

    return run_app(sandbox=bool(args.sandbox), profile=args.profile)


if __name__ == "__main__":
    sys.exit(main())
