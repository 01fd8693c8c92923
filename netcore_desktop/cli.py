"""The sending commands: ``send``, ``history``, ``resend`` and ``profile``.

They are thin: every send goes through :class:`~netcore_desktop.core.sending.SendService`,
the path the window uses too. Exit codes (also in ``--help``):

* 0: accepted (sent, or queued with a 202)
* 1: could not start (no profile, no key stored, keyring failure, unreadable files)
* 2: refused by the pre-send checks, or bad input (a flag, a CSV row, a draft file)
* 3: refused by the API (a 4xx answer) or the SMTP relay (a 5xx reply)
* 4: network trouble, a 5xx after the retries, or an unknown outcome ("may have been sent")

Keys and passwords are read from a hidden prompt, or from standard input when it is not a
terminal; never from the command line, where other users and the shell history see them.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import getpass
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from email.utils import getaddresses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:
    from netcore_desktop.core.checks import Problem
    from netcore_desktop.core.history import History, Outcome
    from netcore_desktop.core.message import Address, Draft
    from netcore_desktop.core.profiles import Profile, ProfileStore
    from netcore_desktop.core.secrets import SecretStore
    from netcore_desktop.core.sending import Prepared, SendOutcome

log = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_CHECKS: Final = 2
EXIT_REFUSED: Final = 3
EXIT_NETWORK: Final = 4

EXIT_CODES_HELP: Final = """exit codes:
  0  accepted (sent, or queued by the service)
  1  could not start (no profile, no key stored, keyring failure)
  2  refused by the pre-send checks, or bad input
  3  refused by the API (4xx) or the SMTP relay
  4  network trouble, server errors after retries, or unknown outcome
"""

#: Column names taken as the recipient address in a CSV file (case-insensitive).
CSV_EMAIL_COLUMNS: Final = ("email", "e-mail", "email_address", "to", "address")
#: Column names taken as the recipient's display name.
CSV_NAME_COLUMNS: Final = ("name", "full_name", "fullname")

#: At most this many bad CSV rows are listed before "and N more".
_MAX_ROW_ERRORS: Final = 20


class CliError(Exception):
    """A problem to report in one line, with the exit code to end with."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


# --- entry points ----------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, profile: bool = True) -> None:
    if profile:
        parser.add_argument(
            "--profile", help="the profile to use (default: the one used last)"
        )
    parser.add_argument(
        "--home",
        metavar="DIR",
        help="keep profiles and history under DIR (same as NETCORE_DESKTOP_HOME)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries and details")


def add_cli_parsers(subparsers: Any) -> None:
    """Register ``send``, ``history``, ``resend`` and ``profile`` on ``subparsers``."""
    fmt = argparse.RawDescriptionHelpFormatter

    # send
    p = subparsers.add_parser(
        "send",
        help="send a message (from flags, a CSV of recipients, or a saved draft)",
        description="Check, render and send one message; every attempt is kept in the history.",
        epilog=EXIT_CODES_HELP,
        formatter_class=fmt,
    )
    _common(p)
    p.add_argument("--from", dest="sender", metavar="ADDR",
                   help="sender address, 'Name <a@b>' allowed (default: the profile's)")
    p.add_argument("--from-name", metavar="NAME", help="sender display name")
    p.add_argument("--to", action="append", default=[], metavar="ADDR",
                   help="recipient, 'Name <a@b>' allowed; repeat for more")
    p.add_argument("--cc", action="append", default=[], metavar="ADDR", help="copy recipient")
    p.add_argument("--bcc", action="append", default=[], metavar="ADDR",
                   help="blind copy recipient")
    p.add_argument("--reply-to", metavar="ADDR", help="Reply-To address")
    p.add_argument("--subject", help="subject; may hold [%%KEY%%] placeholders")
    body = p.add_mutually_exclusive_group()
    body.add_argument("--body", help="the body text (Markdown unless --html)")
    body.add_argument("--body-file", metavar="FILE", help="read the body from FILE ('-': stdin)")
    p.add_argument("--html", action="store_true", help="the body is HTML, not Markdown")
    p.add_argument("--attach", action="append", default=[], metavar="FILE",
                   help="attach FILE; repeat for more")
    p.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE",
                   help="value for a [%%KEY%%] placeholder; repeat for more")
    p.add_argument("--csv", metavar="FILE",
                   help="one recipient per row: an 'email' column (optional 'name') and a "
                   "column per placeholder")
    p.add_argument("--tag", action="append", default=[], metavar="TAG",
                   help="reporting tag; repeat for more")
    p.add_argument("--draft", metavar="FILE",
                   help="start from a saved draft (JSON); other flags override its fields")
    p.add_argument("--dry-run", action="store_true",
                   help="run the checks and print the request body; send nothing")
    p.add_argument("--yes", "-y", action="store_true",
                   help="send even when the checks have warnings (no question asked)")
    p.add_argument("--allow-timeout-retry", action="store_true",
                   help="retry after a read timeout, even though the first try may have been "
                   "sent (risk of a duplicate)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_handler(cmd_send))

    # history
    p = subparsers.add_parser(
        "history",
        help="search what was sent",
        description="Search the history by recipient, subject, message id, token or tag.",
        epilog=EXIT_CODES_HELP,
        formatter_class=fmt,
    )
    _common(p, profile=False)
    p.add_argument("query", nargs="?", default="", help="words to look for (default: all)")
    p.add_argument("--limit", type=int, default=20, help="at most this many rows (default 20)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_handler(cmd_history))

    # resend
    p = subparsers.add_parser(
        "resend",
        help="send an earlier attempt again (optionally to a corrected address)",
        description="Send history attempt ID again as a new attempt linked to it, with fresh "
        "tracking tokens. The profile defaults to the one the attempt used.",
        epilog=EXIT_CODES_HELP,
        formatter_class=fmt,
    )
    _common(p)
    p.add_argument("attempt_id", metavar="ID", type=int, help="the history attempt to resend")
    p.add_argument("--to", metavar="ADDR", help="send to this address instead")
    p.add_argument("--yes", "-y", action="store_true", help="send even when there are warnings")
    p.add_argument("--allow-timeout-retry", action="store_true",
                   help="retry after a read timeout (risk of a duplicate)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_handler(cmd_resend))

    # profile
    p = subparsers.add_parser(
        "profile",
        help="add, list, show or remove profiles; store their keys",
        description="Profiles say where and how to send. Keys live in the system keyring.",
    )
    psub = p.add_subparsers(dest="profile_command", metavar="ACTION", required=True)

    a = psub.add_parser("add", help="add (or with --replace, change) a profile")
    _common(a, profile=False)
    a.add_argument("name", help="profile name")
    a.add_argument("--region", choices=["default", "eu", "legacy", "custom"],
                   help="Netcore region (default: default; custom with --base-url)")
    a.add_argument("--base-url", metavar="URL",
                   help="custom base URL, e.g. http://127.0.0.1:8025 for a sandbox")
    a.add_argument("--api-version", choices=["v6", "v5.1", "v5"], default="v6")
    a.add_argument("--transport", choices=["api", "smtp"], default="api")
    a.add_argument("--from", dest="sender", metavar="ADDR", default="",
                   help="default sender address")
    a.add_argument("--from-name", metavar="NAME", default="", help="default sender name")
    a.add_argument("--reply-to", metavar="ADDR", default="")
    a.add_argument("--test-address", metavar="ADDR", default="",
                   help="your own address, for test sends")
    a.add_argument("--smtp-host", default="smtp.netcorecloud.net")
    a.add_argument("--smtp-port", type=int, default=587)
    a.add_argument("--smtp-user", default="")
    a.add_argument("--smtp-security", choices=["starttls", "tls", "none"], default=None,
                   help="default: tls on port 465, starttls otherwise")
    a.add_argument("--proxy", default="", help="proxy URL (default: the system's proxy)")
    a.add_argument("--ca-bundle", default="", metavar="FILE",
                   help="CA bundle (PEM) for a proxy that inspects TLS")
    a.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    a.add_argument("--sandbox", action="store_true",
                   help="this profile talks to the offline sandbox (no credits spent)")
    a.add_argument("--replace", action="store_true", help="replace a profile of the same name")
    a.set_defaults(handler=_handler(cmd_profile_add))

    ls = psub.add_parser("list", help="list the profiles")
    _common(ls, profile=False)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_handler(cmd_profile_list))

    sh = psub.add_parser("show", help="show one profile (never its key)")
    _common(sh, profile=False)
    sh.add_argument("name")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(handler=_handler(cmd_profile_show))

    rm = psub.add_parser("remove", help="remove a profile and its keys")
    _common(rm, profile=False)
    rm.add_argument("name")
    rm.set_defaults(handler=_handler(cmd_profile_remove))

    for action, what, func in (
        ("set-key", "API key", cmd_profile_set_key),
        ("set-smtp-password", "SMTP password", cmd_profile_set_smtp_password),
    ):
        k = psub.add_parser(
            action,
            help=f"store the profile's {what} in the keyring (prompted, or read from stdin)",
        )
        _common(k, profile=False)
        k.add_argument("name")
        k.set_defaults(handler=_handler(func))


def _handler(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap a command: set up its environment, and turn errors into one line + exit code."""

    def run(args: argparse.Namespace) -> int:
        home = getattr(args, "home", None)
        if home:
            from netcore_desktop.core.paths import HOME_ENV

            os.environ[HOME_ENV] = str(Path(home).expanduser())
        _setup_logging(bool(getattr(args, "verbose", False)))
        try:
            return func(args)
        except CliError as exc:
            _error(str(exc))
            return exc.code
        except KeyboardInterrupt:
            _error("Interrupted. A send in progress may have gone out: see `netcore-desktop "
                   "history`.")
            return 130
        except OSError as exc:
            _error(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
            return EXIT_ERROR

    return run


def _setup_logging(verbose: bool) -> None:
    from netcore_desktop.core.secrets import install_redaction

    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        root.addHandler(handler)
    # Retries and keyring notes are details: shown with -v. Errors are reported by the
    # commands themselves, in one line each.
    root.setLevel(logging.INFO if verbose else logging.CRITICAL)
    install_redaction(root)


def _error(message: str) -> None:
    print(f"netcore-desktop: {message}", file=sys.stderr)


# --- shared pieces ------------------------------------------------------------------------


def _stores() -> tuple[ProfileStore, SecretStore]:
    from netcore_desktop.core.profiles import ProfileFileError, ProfileStore
    from netcore_desktop.core.secrets import SecretStore

    store = ProfileStore()
    try:
        store.list()
    except ProfileFileError as exc:
        raise CliError(str(exc)) from exc
    return store, SecretStore()


def _profile(store: ProfileStore, name: str | None) -> Profile:
    """The named profile, or the one used last, or the only one."""
    if name:
        try:
            return store.get(name)
        except KeyError:
            names = ", ".join(store.names()) or "none yet"
            raise CliError(
                f"There is no profile called {name!r} (profiles: {names}). Add one with "
                f"`netcore-desktop profile add {name} ...`."
            ) from None
    last = store.last_used()
    if last:
        return store.get(last)
    profiles = store.list()
    if len(profiles) == 1:
        return profiles[0]
    if not profiles:
        raise CliError(
            "There is no profile yet. Add one with `netcore-desktop profile add NAME "
            "--from you@your-domain` (or `--region custom --base-url URL --sandbox` for a "
            "sandbox), then store its key with `netcore-desktop profile set-key NAME`."
        )
    raise CliError(
        "Several profiles exist and none was used yet: choose one with --profile "
        f"({', '.join(p.name for p in profiles)})."
    )


def _history() -> History:
    from netcore_desktop.core.history import History

    return History()


def _parse_addresses(values: Sequence[str]) -> list[Address]:
    """``Name <a@b>`` / ``a@b`` values (commas allowed) as addresses, kept as written.

    Whatever does not parse is kept verbatim so that the checks name the bad address.
    """
    from netcore_desktop.core.message import Address

    out: list[Address] = []
    for value in values:
        if not value.strip():
            raise CliError("An address flag is empty.", EXIT_CHECKS)
        pairs = getaddresses([value])
        if not pairs or any(not email for _, email in pairs):
            out.append(Address(value.strip()))
            continue
        out.extend(Address(email.strip(), name.strip()) for name, email in pairs)
    return out


def _parse_attrs(values: Sequence[str]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--attr {value!r}: write it as KEY=VALUE.", EXIT_CHECKS)
        attrs[key] = text
    return attrs


def _read_text(path: str, what: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"The {what} {path} does not exist.", EXIT_CHECKS) from None
    except UnicodeDecodeError:
        raise CliError(f"The {what} {path} is not UTF-8 text.", EXIT_CHECKS) from None
    except OSError as exc:
        raise CliError(f"Cannot read the {what} {path}: {exc.strerror}.", EXIT_CHECKS) from None


def read_csv_recipients(
    path: str, defaults: dict[str, str] | None = None
) -> list[tuple[Address, dict[str, str]]]:
    """Recipients from a CSV file: one (address, attributes) per row.

    The first line names the columns: one of :data:`CSV_EMAIL_COLUMNS` holds the address,
    an optional :data:`CSV_NAME_COLUMNS` column the display name, and every other column is
    a placeholder value (``FIRST_NAME`` fills ``[%FIRST_NAME%]``). ``defaults`` fill in
    values a row leaves out. Raises :class:`CliError` listing every bad row with its line.
    """
    from netcore_desktop.core.message import Address
    from netcore_desktop.core.validation import email_problem

    text = _read_text(path, "CSV file")
    if not text.strip():
        raise CliError(f"{path}: the file is empty.", EXIT_CHECKS)
    try:
        dialect: Any = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), dialect)
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise CliError(f"{path}:1: cannot read the column names ({exc}).", EXIT_CHECKS) from exc
    lowered = [h.lower() for h in header]
    email_col = next((lowered.index(c) for c in CSV_EMAIL_COLUMNS if c in lowered), None)
    if email_col is None:
        raise CliError(
            f"{path}:1: no email column; the first line must name one "
            f"({', '.join(CSV_EMAIL_COLUMNS)}). Columns found: {', '.join(header) or 'none'}.",
            EXIT_CHECKS,
        )
    name_col = next((lowered.index(c) for c in CSV_NAME_COLUMNS if c in lowered), None)
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        if not h:
            raise CliError(f"{path}:1: column {i + 1} has no name.", EXIT_CHECKS)
        if h in seen:
            raise CliError(f"{path}:1: the column {h!r} appears twice.", EXIT_CHECKS)
        seen[h] = i
    rows: list[tuple[Address, dict[str, str]]] = []
    errors: list[str] = []
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                errors.append(
                    f"{path}:{line}: {len(row)} values, but the first line names "
                    f"{len(header)} columns."
                )
                continue
            email = row[email_col].strip()
            if not email:
                errors.append(f"{path}:{line}: the {header[email_col]} is empty.")
                continue
            problem = email_problem(email)
            if problem:
                errors.append(f"{path}:{line}: {problem}")
                continue
            attrs = dict(defaults or {})
            for i, cell in enumerate(row):
                if i not in (email_col, name_col):
                    attrs[header[i]] = cell
            name = row[name_col].strip() if name_col is not None else ""
            rows.append((Address(email, name), attrs))
    except csv.Error as exc:
        errors.append(f"{path}:{reader.line_num}: {exc}.")
    if errors:
        shown = errors[:_MAX_ROW_ERRORS]
        if len(errors) > len(shown):
            shown.append(f"... and {len(errors) - len(shown)} more bad rows.")
        raise CliError("\n".join(shown), EXIT_CHECKS)
    if not rows:
        raise CliError(f"{path}: no recipient rows after the column names.", EXIT_CHECKS)
    return rows


def draft_from_args(args: argparse.Namespace, profile: Profile) -> Draft:
    """The draft the ``send`` flags describe (on top of ``--draft`` when given)."""
    from netcore_desktop.core.message import (
        Address,
        Attachment,
        BodyFormat,
        Draft,
        Envelope,
        draft_from_dict,
    )

    if args.draft:
        try:
            data = json.loads(_read_text(args.draft, "draft file"))
            draft = draft_from_dict(data)
        except (ValueError, AttributeError) as exc:
            raise CliError(f"{args.draft}: not a saved draft ({exc}).", EXIT_CHECKS) from exc
    else:
        draft = Draft(
            sender=Address(profile.sender_email, profile.sender_name),
            reply_to=profile.reply_to,
        )
    if args.sender:
        parsed = _parse_addresses([args.sender])
        if len(parsed) != 1:
            raise CliError("--from takes one address.", EXIT_CHECKS)
        sender = parsed[0]
        draft = replace(draft, sender=Address(sender.email, args.from_name or sender.name))
    elif args.from_name is not None:
        draft = replace(draft, sender=Address(draft.sender.email, args.from_name))
    if args.reply_to is not None:
        draft = replace(draft, reply_to=args.reply_to.strip())
    if args.subject is not None:
        draft = replace(draft, subject=args.subject)
    if args.body is not None:
        draft = replace(draft, body=args.body)
    elif args.body_file:
        draft = replace(draft, body=_read_text(args.body_file, "body file"))
    if args.html:
        draft = replace(draft, body_format=BodyFormat.HTML)
    elif args.body is not None or args.body_file:
        draft = replace(draft, body_format=BodyFormat.MARKDOWN)
    if args.attach:
        files = []
        for path in args.attach:
            try:
                files.append(Attachment(Path(path).name, Path(path).read_bytes()))
            except FileNotFoundError:
                raise CliError(f"The attachment {path} does not exist.", EXIT_CHECKS) from None
            except OSError as exc:
                raise CliError(
                    f"Cannot read the attachment {path}: {exc.strerror}.", EXIT_CHECKS
                ) from None
        draft = replace(draft, attachments=draft.attachments + tuple(files))
    if args.tag:
        draft = replace(draft, tags=tuple(t.strip() for t in args.tag))

    attrs = _parse_attrs(args.attr)
    cc = tuple(_parse_addresses(args.cc))
    bcc = tuple(_parse_addresses(args.bcc))
    if args.csv and args.to:
        raise CliError("Give recipients with --to or with --csv, not both.", EXIT_CHECKS)
    if args.csv:
        rows = read_csv_recipients(args.csv, attrs)
        envelopes = tuple(
            Envelope(to=(addr,), cc=cc, bcc=bcc, attributes=row_attrs)
            for addr, row_attrs in rows
        )
        draft = replace(draft, envelopes=envelopes)
    elif args.to:
        draft = replace(
            draft,
            envelopes=(
                Envelope(to=tuple(_parse_addresses(args.to)), cc=cc, bcc=bcc, attributes=attrs),
            ),
        )
    elif draft.envelopes:
        draft = replace(
            draft,
            envelopes=tuple(
                replace(
                    e,
                    cc=e.cc + cc,
                    bcc=e.bcc + bcc,
                    attributes={**e.attributes, **attrs},
                )
                for e in draft.envelopes
            ),
        )
    elif cc or bcc:
        raise CliError("There is no --to recipient for the --cc/--bcc to go with.", EXIT_CHECKS)
    return draft


# --- output --------------------------------------------------------------------------------


def _problem_line(p: Problem) -> str:
    return f"{p.severity}: {p.message}"


def _problem_json(p: Problem) -> dict[str, Any]:
    return {
        "field": p.field,
        "severity": str(p.severity),
        "message": p.message,
        "envelope": p.envelope,
    }


def exit_code_for(outcome: Outcome) -> int:
    """The exit code of a send outcome (see the module docstring)."""
    from netcore_desktop.core.history import Outcome

    if outcome in (Outcome.SENT, Outcome.QUEUED):
        return EXIT_OK
    if outcome is Outcome.REFUSED:
        return EXIT_REFUSED
    return EXIT_NETWORK


def _outcome_json(prepared: Prepared, outcome: SendOutcome | None, code: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "exit_code": code,
        "outcome": str(outcome.outcome) if outcome else None,
        "credits": prepared.credits,
        "tokens": list(prepared.tokens),
        "problems": [_problem_json(p) for p in prepared.problems],
        "requests": [],
    }
    if outcome is not None:
        for req in outcome.requests:
            r = req.result
            out["requests"].append(
                {
                    "attempt_id": req.attempt_id,
                    "outcome": str(r.outcome),
                    "status_code": r.status_code,
                    "meaning": r.meaning,
                    "message_id": r.message_id,
                    "latency_ms": round(r.latency_ms, 1),
                    "attempts": r.attempts,
                    "recipients": list(req.recipients),
                    "errors": [{"field": e.field, "message": e.message} for e in r.errors],
                }
            )
    return out


def _print_outcome(outcome: SendOutcome, out: TextIO) -> None:
    for req in outcome.requests:
        r = req.result
        status = f"HTTP {r.status_code}, " if r.status_code is not None else ""
        tries = f", {r.attempts} tries" if r.attempts > 1 else ""
        line = f"#{req.attempt_id}: {r.meaning}"
        if r.message_id:
            line += f" Message id {r.message_id}."
        print(f"{line} ({status}{r.latency_ms:.0f} ms{tries})", file=out)
        for err in r.errors:
            print(f"  {err.field}: {err.message}" if err.field else f"  {err.message}", file=out)


def _confirmed(prepared: Prepared, assume_yes: bool) -> bool:
    """Whether to send a draft with warnings: asked on a terminal, refused otherwise."""
    if not prepared.warnings or assume_yes:
        return True
    if not sys.stdin.isatty():
        return False
    try:
        answer = input(f"Send anyway ({prepared.credits} credits)? [y/N] ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def _send_prepared(
    args: argparse.Namespace,
    store: ProfileStore,
    profile: Profile,
    prepared: Prepared,
    send: Callable[[], SendOutcome] | None,
) -> int:
    """Report the checks, confirm, then send (or, with ``send`` None, print the body)."""
    from netcore_desktop.core.sending import ChecksFailed, SendError

    if not args.json:
        for p in prepared.problems:
            print(_problem_line(p), file=sys.stderr)
    if prepared.blocking:
        if args.json:
            print(json.dumps(_outcome_json(prepared, None, EXIT_CHECKS), indent=2))
        return EXIT_CHECKS
    if send is None:
        bodies = [r.payload for r in prepared.requests]
        doc: Any = bodies[0] if len(bodies) == 1 else bodies
        if args.json:
            doc = {**_outcome_json(prepared, None, EXIT_OK), "payloads": bodies}
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not _confirmed(prepared, args.yes):
        if args.json:
            print(json.dumps(_outcome_json(prepared, None, EXIT_CHECKS), indent=2))
        hint = " pass --yes to send anyway" if not sys.stdin.isatty() else ""
        _error(f"Not sent: the checks found warnings;{hint}." if hint else "Not sent.")
        return EXIT_CHECKS
    try:
        outcome = send()
    except ChecksFailed as exc:
        raise CliError(str(exc), EXIT_CHECKS) from exc
    except SendError as exc:
        raise CliError(str(exc), EXIT_ERROR) from exc
    code = max(exit_code_for(r.result.outcome) for r in outcome.requests)
    # A profile removed meanwhile, or a read-only config dir, is not worth failing for.
    with contextlib.suppress(KeyError, OSError):
        store.set_last_used(profile.name)
    if args.json:
        print(json.dumps(_outcome_json(prepared, outcome, code), indent=2))
    else:
        _print_outcome(outcome, sys.stdout if code == EXIT_OK else sys.stderr)
    return code


# --- commands --------------------------------------------------------------------------------


def cmd_send(args: argparse.Namespace) -> int:
    """``netcore-desktop send``."""
    from netcore_desktop.core.sending import SendService

    store, secrets = _stores()
    profile = _profile(store, args.profile)
    draft = draft_from_args(args, profile)
    if args.dry_run:
        # No key and no history are needed to look at the request.
        from netcore_desktop.core.sending import prepare_for

        return _send_prepared(args, store, profile, prepare_for(profile, draft), None)
    with SendService(profile, secrets, _history()) as service:
        prepared = service.prepare(draft)
        return _send_prepared(
            args,
            store,
            profile,
            prepared,
            lambda: service.send(prepared, allow_timeout_retry=args.allow_timeout_retry),
        )


def cmd_resend(args: argparse.Namespace) -> int:
    """``netcore-desktop resend ID [--to ADDR]``."""
    from netcore_desktop.core.sending import SendError, SendService

    store, secrets = _stores()
    history = _history()
    entry = _history_entry(history, args.attempt_id)
    name = args.profile or getattr(entry, "profile", None) or None
    profile = _profile(store, name)
    if args.to is not None:
        parsed = _parse_addresses([args.to])
        if len(parsed) != 1:
            raise CliError("--to takes one address.", EXIT_CHECKS)
    with SendService(profile, secrets, history) as service:
        try:
            prepared = service.prepare_resend(args.attempt_id, to=args.to)
        except SendError as exc:
            raise CliError(str(exc)) from exc
        return _send_prepared(
            args,
            store,
            profile,
            prepared,
            lambda: service.send(
                prepared, resend_of=args.attempt_id,
                allow_timeout_retry=args.allow_timeout_retry,
            ),
        )


def _history_entry(history: History, attempt_id: int) -> Any:
    try:
        entry = history.get(attempt_id)
    except KeyError:
        entry = None
    if entry is None:
        raise CliError(f"There is no attempt #{attempt_id} in the history.")
    return entry


def cmd_history(args: argparse.Namespace) -> int:
    """``netcore-desktop history [QUERY]``."""
    history = _history()
    entries = history.search(args.query or "", limit=max(1, args.limit))
    if args.json:
        print(json.dumps([_entry_json(e) for e in entries], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not entries:
        print("Nothing found." if args.query else "Nothing sent yet.")
        return EXIT_OK
    for e in entries:
        row = _entry_json(e)
        # Stored in UTC; a person reads their own clock.
        when = e.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        to = ", ".join(row.get("recipients") or [])
        status = row.get("status_code")
        status_text = f" {status}" if status is not None else ""
        resend = f" (resend of #{row['resend_of']})" if row.get("resend_of") else ""
        print(
            f"#{row['id']:<5} {when}  {row['outcome']}{status_text}  {to}  "
            f"{row.get('subject') or ''}{resend}"
        )
        if row.get("message_id"):
            print(f"       message id {row['message_id']}")
    return EXIT_OK


def _entry_json(entry: Any) -> dict[str, Any]:
    fields = (
        "id", "created_at", "completed_at", "profile", "transport", "api_version", "endpoint",
        "outcome", "status_code", "meaning", "message_id", "subject", "sender", "recipients",
        "tokens", "tags", "resend_of", "job_id", "latency_ms", "attempts", "error",
    )
    out: dict[str, Any] = {}
    for name in fields:
        if hasattr(entry, name):
            value = getattr(entry, name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif value is not None and not isinstance(value, str | int | float | bool | list):
                value = str(value)
            out[name] = value
    return out


# --- profile commands ----------------------------------------------------------------------


def _read_secret(prompt: str) -> str:
    """A secret from a hidden prompt on a terminal, or the first line of stdin otherwise."""
    value = getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline()
    value = value.strip("\r\n")
    if not value.strip():
        raise CliError("Nothing was entered; nothing was stored.", EXIT_CHECKS)
    return value


def cmd_profile_add(args: argparse.Namespace) -> int:
    """``netcore-desktop profile add NAME ...``."""
    from netcore_desktop.core.contract import ApiVersion, Region
    from netcore_desktop.core.profiles import Profile, SmtpSecurity, Transport

    store, _ = _stores()
    region = Region(args.region) if args.region else (
        Region.CUSTOM if args.base_url else Region.DEFAULT
    )
    if args.base_url and region is not Region.CUSTOM:
        raise CliError("--base-url goes with --region custom.", EXIT_CHECKS)
    security = args.smtp_security or ("tls" if args.smtp_port == 465 else "starttls")
    profile = Profile(
        name=args.name,
        region=region,
        base_url=args.base_url or "",
        api_version=ApiVersion(args.api_version),
        transport=Transport(args.transport),
        sender_email=args.sender.strip(),
        sender_name=args.from_name,
        reply_to=args.reply_to.strip(),
        test_address=args.test_address.strip(),
        smtp_host=args.smtp_host,
        smtp_port=args.smtp_port,
        smtp_user=args.smtp_user,
        smtp_security=SmtpSecurity(security),
        proxy=args.proxy,
        ca_bundle=args.ca_bundle,
        timeout_s=args.timeout,
        is_sandbox=args.sandbox,
    )
    problems = profile.validate()
    if problems:
        raise CliError("The profile was not saved: " + " ".join(problems), EXIT_CHECKS)
    if args.name in store.names() and not args.replace:
        raise CliError(
            f"A profile called {args.name!r} exists already: pass --replace to change it.",
            EXIT_CHECKS,
        )
    store.save(profile)
    if store.last_used() is None:
        store.set_last_used(profile.name)
    what = "secret" if profile.transport.value == "smtp" else "key"
    action = "set-smtp-password" if what == "secret" else "set-key"
    print(
        f"Saved profile {profile.name!r}. Store its {what} with "
        f"`netcore-desktop profile {action} {profile.name}`."
    )
    return EXIT_OK


def _key_status(secrets: SecretStore, profile: Profile) -> dict[str, bool | None]:
    from netcore_desktop.core.secrets import SecretStoreError

    out: dict[str, bool | None] = {}
    for label, getter in (
        ("api_key_stored", secrets.get_api_key),
        ("smtp_password_stored", secrets.get_smtp_password),
    ):
        try:
            out[label] = getter(profile.name) is not None
        except SecretStoreError:
            out[label] = None
    return out


def cmd_profile_list(args: argparse.Namespace) -> int:
    """``netcore-desktop profile list``."""
    store, secrets = _stores()
    last = store.last_used()
    profiles = store.list()
    if args.json:
        doc = [
            {**p.to_dict(), **_key_status(secrets, p), "last_used": p.name == last}
            for p in profiles
        ]
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not profiles:
        print("No profiles yet: add one with `netcore-desktop profile add NAME`.")
        return EXIT_OK
    for p in profiles:
        status = _key_status(secrets, p)
        where = p.api_base_url() if p.transport.value == "api" else f"smtp {p.smtp_host}"
        stored = status["smtp_password_stored" if p.transport.value == "smtp" else "api_key_stored"]
        key = {True: "key stored", False: "no key", None: "keyring unavailable"}[stored]
        mark = "*" if p.name == last else " "
        print(f"{mark} {p.name}  {where}  {p.api_version}  {p.sender_email or '-'}  ({key})")
    return EXIT_OK


def cmd_profile_show(args: argparse.Namespace) -> int:
    """``netcore-desktop profile show NAME``."""
    store, secrets = _stores()
    profile = _profile(store, args.name)
    doc = {**profile.to_dict(), **_key_status(secrets, profile)}
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        for key, value in doc.items():
            print(f"{key}: {value}")
    return EXIT_OK


def cmd_profile_remove(args: argparse.Namespace) -> int:
    """``netcore-desktop profile remove NAME``."""
    from netcore_desktop.core.secrets import SecretStoreError

    store, secrets = _stores()
    try:
        store.remove(args.name)
    except KeyError:
        raise CliError(f"There is no profile called {args.name!r}.", EXIT_CHECKS) from None
    try:
        secrets.delete_all(args.name)
    except SecretStoreError as exc:
        raise CliError(f"The profile was removed, but its keys were not: {exc}") from exc
    print(f"Removed profile {args.name!r} and its keys.")
    return EXIT_OK


def _set_secret(args: argparse.Namespace, what: str) -> int:
    from netcore_desktop.core.secrets import SecretStoreError

    store, secrets = _stores()
    profile = _profile(store, args.name)
    value = _read_secret(f"{what} for {profile.name}: ")
    try:
        if what == "API key":
            secrets.set_api_key(profile.name, value)
        else:
            secrets.set_smtp_password(profile.name, value)
    except (SecretStoreError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    if not secrets.usable:
        raise CliError(
            f"{secrets.status} The command line cannot keep it after it exits: set up a "
            "keyring (e.g. gnome-keyring or KWallet) and try again."
        )
    print(f"Stored the {what} of {profile.name!r} in the keyring.")
    return EXIT_OK


def cmd_profile_set_key(args: argparse.Namespace) -> int:
    """``netcore-desktop profile set-key NAME`` (the key from a prompt or stdin)."""
    return _set_secret(args, "API key")


def cmd_profile_set_smtp_password(args: argparse.Namespace) -> int:
    """``netcore-desktop profile set-smtp-password NAME``."""
    return _set_secret(args, "SMTP password")
