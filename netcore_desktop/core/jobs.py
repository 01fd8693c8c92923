"""Bulk jobs: many sends as one job, kept in SQLite so that a crash never sends a row twice.

A job is either a template draft plus one row per recipient (each row one envelope with its
own attributes, e.g. from a CSV list, :mod:`netcore_desktop.core.csv_import`) or a list of
history entries to resend. Its rows live in the history database (``jobs`` and
``job_rows``, schema 3 of :mod:`netcore_desktop.core.history`).

Crash safety comes from the order of the commits of every row:

1. at creation each row gets its correlation token (``shared/netcore-api.md`` §3), stored;
2. a worker *claims* the row: ``pending`` → ``sending``, committed before the request goes
   out;
3. the send itself goes through :class:`~netcore_desktop.core.sending.SendService`, which
   records the history attempt (with the row's token and the job's id) before sending and
   completes it with the answer;
4. the row gets its final state (``sent``, ``queued``, ``failed``, ``refused``, ``unknown``,
   ``cancelled``) with the attempt id, status and message id.

A process killed at any point leaves each row either ``pending`` (never sent), final, or
``sending`` (its request may have gone out). :meth:`JobStore.recover` turns ``sending`` rows
whose attempt was recorded into ``unknown``: they are never sent again unless the person
says so (:meth:`JobStore.resolve_unknown`), or the service's delivery events show they
arrived (:func:`reconcile_unknown`). A ``sending`` row with no recorded attempt never went
out (step 3 records before sending) and simply waits again. Resuming only ever claims
``pending`` rows, and a claim is a single ``UPDATE … RETURNING``, so no row can be sent
twice, even by two processes.

:class:`JobRunner` sends a job with N worker threads sharing one keep-alive HTTP client
(the service's), an optional rate limit, pause/resume/cancel, extra backoff when the service
keeps failing (the client already retries each 5xx, §4), and it pauses itself, saying why,
on a 202 (the daily limit, §4) and on a 401/403 (the key or its scope: nothing more can be
sent until the person fixes it). Progress comes through a callback from one thread, at most
every ``progress_interval`` seconds. No Qt here: the window drives it from its worker.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from netcore_desktop.core.checks import Problem, run_checks
from netcore_desktop.core.history import (
    History,
    HistoryEntry,
    Outcome,
    fetch_events,
)
from netcore_desktop.core.message import (
    Address,
    Draft,
    Envelope,
    build_payload,
    draft_from_dict,
    draft_to_dict,
    new_token,
    payload_bytes,
)
from netcore_desktop.core.profiles import Transport
from netcore_desktop.core.render import missing_placeholders, preview_html, render_html, substitute
from netcore_desktop.core.sending import (
    Prepared,
    PreparedRequest,
    SendError,
    SendService,
    split_envelopes,
)

if TYPE_CHECKING:
    from netcore_desktop.core.client import NetcoreClient

log = logging.getLogger(__name__)

_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"

#: A running job whose owner has not said so for this long is taken to have died.
STALE_AFTER: Final = timedelta(seconds=30)

#: Most worker threads a job may use (the sandbox and Netcore both cope; more only queue).
MAX_CONCURRENCY: Final = 16


class RowState(StrEnum):
    """Where one row of a job is."""

    PENDING = "pending"
    #: Claimed: its request is being sent (after a crash: may have gone out).
    SENDING = "sending"
    SENT = "sent"
    #: Accepted but queued (202, the daily limit): never resent automatically.
    QUEUED = "queued"
    #: 5xx after every retry, or no connection: not accepted.
    FAILED = "failed"
    #: Refused by the service (4xx): the row itself is wrong.
    REFUSED = "refused"
    #: The request went out and no answer came (or the app died meanwhile): ask the person.
    UNKNOWN = "unknown"
    #: Left out by the person (e.g. a row with unresolved placeholders).
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """Whether the row is settled (everything but ``pending`` and ``sending``)."""
        return self not in (RowState.PENDING, RowState.SENDING)


class JobState(StrEnum):
    """Where a job is."""

    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    CANCELLED = "cancelled"


class JobKind(StrEnum):
    """What a job sends."""

    #: A template draft, one envelope per row.
    DRAFT = "draft"
    #: History entries, each sent again as it was.
    RESEND = "resend"


class Reason(StrEnum):
    """Why a job paused (the code beside the sentence for the person)."""

    #: The person paused it.
    PAUSED = "paused"
    #: A 202: the account's daily limit may be reached.
    DAILY_LIMIT = "daily_limit"
    #: A 401 or 403: the key, its region or its scope.
    AUTH = "auth"
    #: The service kept failing after backoff.
    FAILING = "failing"
    #: The app stopped (closed or killed) while the job ran.
    INTERRUPTED = "interrupted"
    #: The template has problems that block sending.
    CHECKS = "checks"
    #: Sending could not start (no key, keyring, profile settings).
    SETUP = "setup"


# Row outcome of a send, from the history's vocabulary.
_ROW_FOR_OUTCOME: Final = {
    Outcome.SENT: RowState.SENT,
    Outcome.QUEUED: RowState.QUEUED,
    Outcome.REFUSED: RowState.REFUSED,
    Outcome.FAILED: RowState.FAILED,
    Outcome.UNKNOWN: RowState.UNKNOWN,
    Outcome.CANCELLED: RowState.CANCELLED,
    Outcome.PENDING: RowState.UNKNOWN,
}


def _now() -> str:
    return datetime.now(UTC).strftime(_TIME_FORMAT)


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)


def this_owner() -> str:
    """How this process names itself as the owner of a running job."""
    return f"{socket.gethostname()}:{os.getpid()}"


# Jobs a runner of this process is running now (an owner check cannot tell them from a job
# left behind by an earlier run that had the same pid).
_ACTIVE: set[int] = set()
_ACTIVE_LOCK = threading.Lock()


def _owner_alive(owner: str, heartbeat: datetime | None, job_id: int) -> bool:
    if not owner:
        return False
    if heartbeat is None or datetime.now(UTC) - heartbeat > STALE_AFTER:
        return False
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine (a shared folder): trust its fresh heartbeat
    pid = int(pid_text)
    if pid == os.getpid():
        with _ACTIVE_LOCK:
            return job_id in _ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewRow:
    """A row to add to a job: one recipient and its attribute values."""

    email: str
    name: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)
    #: Line of the CSV file it came from, for messages.
    line: int | None = None


class _RowLike(Protocol):
    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def attributes(self) -> Mapping[str, str]: ...
    @property
    def line(self) -> int | None: ...


@dataclass(frozen=True)
class JobRow:
    """One row of a job as stored."""

    job_id: int
    row: int
    line: int | None
    email: str
    name: str
    attributes: Mapping[str, str]
    source_attempt: int | None
    state: RowState
    token: str
    attempt_id: int | None
    status_code: int | None
    message_id: str
    error: str
    #: How many times the row was handed to the service.
    sends: int
    updated_at: datetime | None


_ROW_COLUMNS: Final = (
    "job_id, row, line, email, name, attributes, source_attempt, state, token, attempt_id,"
    " status_code, message_id, error, sends, updated_at"
)


def _row(values: Sequence[Any]) -> JobRow:
    try:
        attributes = json.loads(values[5])
    except (TypeError, ValueError):
        attributes = {}
    return JobRow(
        job_id=values[0],
        row=values[1],
        line=values[2],
        email=values[3],
        name=values[4],
        attributes={str(k): str(v) for k, v in attributes.items()}
        if isinstance(attributes, dict)
        else {},
        source_attempt=values[6],
        state=RowState(values[7]),
        token=values[8],
        attempt_id=values[9],
        status_code=values[10],
        message_id=values[11],
        error=values[12],
        sends=values[13],
        updated_at=_parse(values[14]),
    )


@dataclass(frozen=True)
class Job:
    """One bulk job as stored (without its rows)."""

    id: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    name: str
    kind: JobKind
    profile: str
    state: JobState
    reason_code: str
    reason: str
    concurrency: int
    rate_per_s: float | None
    source: str
    owner: str
    heartbeat_at: datetime | None
    #: The template (``None`` for a resend job).
    draft: Draft | None

    @property
    def label(self) -> str:
        """A name for lists: the job's name or its template's subject."""
        if self.name:
            return self.name
        if self.draft is not None and self.draft.subject:
            return self.draft.subject
        return f"Job #{self.id}"


_JOB_COLUMNS: Final = (
    "id, created_at, updated_at, finished_at, name, kind, profile, state, reason_code, reason,"
    " concurrency, rate_per_s, source, owner, heartbeat_at, draft_json"
)


def _job(values: Sequence[Any]) -> Job:
    draft: Draft | None = None
    if values[15]:
        try:
            draft = draft_from_dict(json.loads(values[15]))
        except ValueError as exc:
            log.warning("Job %s has an unreadable template: %s", values[0], exc)
    return Job(
        id=values[0],
        created_at=_parse(values[1]) or datetime.fromtimestamp(0, UTC),
        updated_at=_parse(values[2]) or datetime.fromtimestamp(0, UTC),
        finished_at=_parse(values[3]),
        name=values[4],
        kind=JobKind(values[5]),
        profile=values[6],
        state=JobState(values[7]),
        reason_code=values[8],
        reason=values[9],
        concurrency=values[10],
        rate_per_s=values[11],
        source=values[12],
        owner=values[13],
        heartbeat_at=_parse(values[14]),
        draft=draft,
    )


@dataclass(frozen=True)
class JobProgress:
    """Counts of a job's rows by state, and the job's state (for progress bars)."""

    job_id: int
    state: JobState
    counts: Mapping[str, int]
    reason_code: str = ""
    reason: str = ""
    #: Rows finished per second since this run started (0 before the first).
    rate: float = 0.0

    def count(self, state: RowState) -> int:
        """Rows in ``state``."""
        return int(self.counts.get(str(state), 0))

    @property
    def total(self) -> int:
        """Every row of the job."""
        return sum(self.counts.values())

    @property
    def sent(self) -> int:
        """Rows the service accepted and will deliver now."""
        return self.count(RowState.SENT)

    @property
    def queued(self) -> int:
        """Rows accepted but queued (202)."""
        return self.count(RowState.QUEUED)

    @property
    def failed(self) -> int:
        """Rows the service failed (5xx) or refused (4xx)."""
        return self.count(RowState.FAILED) + self.count(RowState.REFUSED)

    @property
    def unknown(self) -> int:
        """Rows whose answer never arrived (to decide about)."""
        return self.count(RowState.UNKNOWN)

    @property
    def skipped(self) -> int:
        """Rows left out or cancelled."""
        return self.count(RowState.SKIPPED) + self.count(RowState.CANCELLED)

    @property
    def left(self) -> int:
        """Rows not sent yet (pending) or being sent now."""
        return self.count(RowState.PENDING) + self.count(RowState.SENDING)

    @property
    def done(self) -> int:
        """Rows in a final state."""
        return self.total - self.left

    def describe(self) -> str:
        """One line for a status bar."""
        text = (
            f"{self.done} of {self.total} done: {self.sent} sent, {self.queued} queued, "
            f"{self.failed} failed, {self.left} left"
        )
        if self.unknown:
            text += f", {self.unknown} unknown"
        if self.skipped:
            text += f", {self.skipped} skipped"
        return text + "."


@dataclass(frozen=True)
class RowPreview:
    """What one row's recipient will see, and the placeholders it leaves unfilled."""

    row: int
    subject: str
    html: str
    to: str
    missing: tuple[str, ...]
    #: The Cc and Bcc the row's message also goes to (from the template), as text.
    cc: str = ""
    bcc: str = ""
    #: Credits the row costs (its To, Cc and Bcc).
    credits: int = 1


# --- drafts per row ----------------------------------------------------------------------------


def envelope_tokens(token: str, count: int) -> list[str]:
    """The correlation token of each envelope of a row: the row's, then ``<token>-2``, …"""
    return [token if i == 0 else f"{token}-{i + 1}" for i in range(count)]


def row_envelope(template: Draft, email: str, name: str, attributes: Mapping[str, str],
                 token: str = "") -> Envelope:
    """The envelope a row sends: its own address and values, the template's Cc, Bcc and headers.

    The template's first envelope lends its Cc and Bcc (the compose form copies Cc into every
    envelope, so a Cc set on the draft goes with every row's message, as the preview shows),
    its headers (e.g. a List-Unsubscribe header) and its attachments. An address that is the
    row's own recipient is left out of its Cc/Bcc: it would get two copies and cost two
    credits.
    """
    base = template.envelopes[0] if template.envelopes else None
    own = email.strip().lower()
    return Envelope(
        to=(Address(email, name),),
        cc=tuple(a for a in base.cc if a.email.strip().lower() != own) if base else (),
        bcc=tuple(a for a in base.bcc if a.email.strip().lower() != own) if base else (),
        attributes=dict(attributes),
        headers=dict(base.headers) if base else {},
        attachments=base.attachments if base else (),
        token=token,
    )


def row_draft(template: Draft, row: JobRow | NewRow) -> Draft:
    """The one-envelope draft a row of a template job sends (with the row's token).

    Everything message-wide (reply-to, tags, attachments, tracking, schedule, the global
    Bcc) is the template's; the global Bcc leaves out the row's own address, as
    :func:`row_envelope` does for Cc and Bcc.
    """
    token = row.token if isinstance(row, JobRow) else ""
    env = row_envelope(template, row.email, row.name, row.attributes, token)
    own = row.email.strip().lower()
    return replace(
        template,
        envelopes=(env,),
        bcc=tuple(a for a in template.bcc if a.email.strip().lower() != own),
    )


def row_credits(template: Draft, rows: Iterable[JobRow | NewRow]) -> int:
    """Credits the rows of a template job cost: each row's To, Cc, Bcc and global Bcc."""
    # Counted without building each row's draft: an import may have 100,000 rows.
    base = template.envelopes[0] if template.envelopes else None
    extra = [a.email.strip().lower()
             for a in ((base.cc + base.bcc) if base else ()) + template.bcc]
    repeats = Counter(extra)
    return sum(1 + len(extra) - repeats.get(row.email.strip().lower(), 0) for row in rows)


def preview_row(template: Draft, row: JobRow | NewRow, number: int = 0,
                rendered: str | None = None) -> RowPreview:
    """The row's message as its recipient will see it, and its unfilled placeholders.

    ``rendered`` is the template's HTML from :func:`render_html` (pass it when previewing
    many rows, so the body is rendered once).
    """
    html = render_html(template) if rendered is None else rendered
    draft = row_draft(template, row)
    env = draft.envelopes[0]
    missing = missing_placeholders(env.attributes, template.subject, html, template.amp)
    return RowPreview(
        row=row.row if isinstance(row, JobRow) else number,
        subject=substitute(template.subject, env.attributes),
        html=preview_html(draft, 0, html),
        to=env.to[0].display(),
        missing=tuple(missing),
        cc=", ".join(a.display() for a in env.cc),
        bcc=", ".join(a.display() for a in env.bcc + draft.bcc),
        credits=draft.credit_count(),
    )


def flag_rows(template: Draft, rows: Iterable[JobRow | NewRow]) -> dict[int, tuple[str, ...]]:
    """Row number (or index for :class:`NewRow`) → keys left unfilled, for flagged rows only."""
    html = render_html(template)
    out: dict[int, tuple[str, ...]] = {}
    for index, row in enumerate(rows):
        missing = missing_placeholders(row.attributes, template.subject, html, template.amp)
        if missing:
            out[row.row if isinstance(row, JobRow) else index] = tuple(missing)
    return out


def _prepared(service: SendService, draft: Draft, html: str) -> Prepared:
    """A :class:`Prepared` for ``draft`` *keeping its tokens* (the job chose them)."""
    profile = service.profile
    smtp = profile.transport is Transport.SMTP
    parts = split_envelopes(draft, 1) if smtp else split_envelopes(draft)
    requests = []
    for part in parts:
        payload = build_payload(part, profile.api_version, html)
        requests.append(PreparedRequest(part, payload, payload_bytes(payload)))
    return Prepared(
        draft=draft,
        html=html,
        requests=tuple(requests),
        problems=(),
        credits=draft.credit_count(),
        transport=profile.transport,
        api_version=profile.api_version,
    )


# --- the store ---------------------------------------------------------------------------------


class JobStore:
    """Jobs and their rows in the history database; thread-safe like :class:`History`."""

    def __init__(self, history: History) -> None:
        self.history = history

    # --- creating ----------------------------------------------------------------------------

    def _insert_job(self, conn: Any, *, kind: JobKind, profile: str, name: str, source: str,
                    concurrency: int, rate_per_s: float | None, draft_json: str) -> int:
        now = _now()
        cursor = conn.execute(
            "INSERT INTO jobs (created_at, updated_at, name, kind, profile, state, concurrency,"
            " rate_per_s, source, draft_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (now, now, name, str(kind), profile, str(JobState.READY),
             _clamp_concurrency(concurrency), rate_per_s, source, draft_json),
        )
        job_id = cursor.lastrowid
        assert job_id is not None
        return int(job_id)

    def create(
        self,
        profile: str,
        template: Draft,
        rows: Iterable[_RowLike],
        *,
        name: str = "",
        source: str = "",
        concurrency: int = 4,
        rate_per_s: float | None = None,
    ) -> int:
        """A new job sending ``template`` once per row; returns its id.

        Every row gets its correlation token now, stored with the row before anything is
        sent. ``rows`` are :class:`NewRow` values or anything with ``email``, ``name``,
        ``attributes`` and ``line`` (e.g. :class:`~netcore_desktop.core.csv_import.CsvRecipient`).
        """
        # The template keeps no recipients or tokens of its own: the rows are the recipients.
        stored = replace(template, envelopes=template.envelopes[:1])
        stored = replace(stored, envelopes=tuple(replace(e, token="") for e in stored.envelopes))
        values = [
            (r.line, r.email.strip(), r.name, json.dumps(dict(r.attributes), ensure_ascii=False))
            for r in rows
        ]
        with self.history.transaction() as conn:
            job_id = self._insert_job(
                conn, kind=JobKind.DRAFT, profile=profile, name=name, source=source,
                concurrency=concurrency, rate_per_s=rate_per_s,
                draft_json=json.dumps(draft_to_dict(stored), ensure_ascii=False),
            )
            conn.executemany(
                "INSERT INTO job_rows (job_id, row, line, email, name, attributes, token)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (job_id, i + 1, line, email, name_, attrs, new_token())
                    for i, (line, email, name_, attrs) in enumerate(values)
                ],
            )
        log.info("Created bulk job %d with %d rows.", job_id, len(values))
        return job_id

    def create_resend(
        self,
        profile: str,
        attempt_ids: Iterable[int],
        *,
        name: str = "",
        concurrency: int = 4,
        rate_per_s: float | None = None,
    ) -> int:
        """A new job resending history entries as they were; returns its id.

        Each entry becomes one row with a fresh correlation token; the new attempts will be
        linked to the entries they resend. ``KeyError`` for an id not in the history.
        """
        entries = [self.history.get(i) for i in dict.fromkeys(attempt_ids)]
        with self.history.transaction() as conn:
            job_id = self._insert_job(
                conn, kind=JobKind.RESEND, profile=profile, name=name, source="history",
                concurrency=concurrency, rate_per_s=rate_per_s, draft_json="",
            )
            conn.executemany(
                "INSERT INTO job_rows (job_id, row, email, name, source_attempt, token)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (job_id, i + 1, ", ".join(e.recipients[:3]) + ("…" if len(e.recipients) > 3
                                                                   else ""),
                     e.subject, e.id, new_token())
                    for i, e in enumerate(entries)
                ],
            )
        return job_id

    # --- reading -----------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        """The job ``job_id`` (``KeyError`` if there is none)."""
        row = self.history.connection().execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None:
            raise KeyError(job_id)
        return _job(row)

    def jobs(self, states: Iterable[JobState] | None = None, limit: int = 100) -> list[Job]:
        """Jobs, newest first, optionally only in some states."""
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs"
        params: list[Any] = []
        if states is not None:
            wanted = [str(s) for s in states]
            sql += f" WHERE state IN ({', '.join('?' * len(wanted))})"
            params.extend(wanted)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        return [_job(r) for r in self.history.connection().execute(sql, params).fetchall()]

    def rows(
        self,
        job_id: int,
        states: Iterable[RowState] | None = None,
        *,
        offset: int = 0,
        limit: int = -1,
    ) -> list[JobRow]:
        """Rows of a job in order, optionally only in some states."""
        sql = f"SELECT {_ROW_COLUMNS} FROM job_rows WHERE job_id = ?"
        params: list[Any] = [job_id]
        if states is not None:
            wanted = [str(s) for s in states]
            sql += f" AND state IN ({', '.join('?' * len(wanted))})"
            params.extend(wanted)
        sql += " ORDER BY row LIMIT ? OFFSET ?"
        params.extend([limit, offset])
        return [_row(r) for r in self.history.connection().execute(sql, params).fetchall()]

    def row(self, job_id: int, number: int) -> JobRow:
        """Row ``number`` (1-based) of a job (``KeyError`` if none)."""
        found = self.history.connection().execute(
            f"SELECT {_ROW_COLUMNS} FROM job_rows WHERE job_id = ? AND row = ?",
            (job_id, number),
        ).fetchone()
        if found is None:
            raise KeyError((job_id, number))
        return _row(found)

    def counts(self, job_id: int) -> dict[str, int]:
        """Rows per state."""
        rows = self.history.connection().execute(
            "SELECT state, count(*) FROM job_rows WHERE job_id = ? GROUP BY state", (job_id,)
        ).fetchall()
        return {str(state): int(n) for state, n in rows}

    def progress(self, job_id: int) -> JobProgress:
        """The job's state and row counts as stored."""
        job = self.get(job_id)
        return JobProgress(job_id, job.state, self.counts(job_id), job.reason_code, job.reason)

    # --- changing state ------------------------------------------------------------------------

    def set_state(self, job_id: int, state: JobState, reason_code: str = "",
                  reason: str = "") -> None:
        """Set the job's state (and why, when paused)."""
        now = _now()
        with self.history.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET state = ?, reason_code = ?, reason = ?, updated_at = ?,"
                " finished_at = CASE WHEN ? IN ('finished', 'cancelled') THEN ? ELSE NULL END"
                " WHERE id = ?",
                (str(state), reason_code, reason, now, str(state), now, job_id),
            )

    def set_concurrency(self, job_id: int, concurrency: int) -> None:
        """How many rows the job sends at once (kept for the next run too)."""
        with self.history.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET concurrency = ? WHERE id = ?",
                (_clamp_concurrency(concurrency), job_id),
            )

    def set_rate(self, job_id: int, rate_per_s: float | None) -> None:
        """At most this many rows a second (``None`` or 0: no limit), kept for the next run."""
        with self.history.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET rate_per_s = ? WHERE id = ?", (rate_per_s or None, job_id)
            )

    def acquire(self, job_id: int, owner: str) -> Job:
        """Mark the job as running in ``owner``'s hands.

        Raises :class:`JobBusyError` when another live process runs it, ``KeyError`` when it
        does not exist, and :class:`JobError` when it is finished or cancelled.
        """
        current = self.get(job_id)
        if current.owner and not _owner_alive(current.owner, current.heartbeat_at, job_id):
            # Left behind by a process that died: its in-flight rows become unknown first.
            self._recover_one(current)
        with self.history.transaction() as conn:
            row = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None:
                raise KeyError(job_id)
            job = _job(row)
            if job.state in (JobState.FINISHED, JobState.CANCELLED):
                # Rows may have been put back to pending (a retry): then it runs again.
                left = conn.execute(
                    "SELECT count(*) FROM job_rows WHERE job_id = ? AND state = 'pending'",
                    (job_id,),
                ).fetchone()[0]
                if not left:
                    raise JobError(f"Job #{job_id} is {job.state}: nothing is left to send.")
            if job.owner and _owner_alive(job.owner, job.heartbeat_at, job_id):
                raise JobBusyError(
                    f"Job #{job_id} is being sent by another Netcore Desktop ({job.owner})."
                )
            now = _now()
            conn.execute(
                "UPDATE jobs SET state = 'running', reason_code = '', reason = '', owner = ?,"
                " heartbeat_at = ?, updated_at = ?, finished_at = NULL WHERE id = ?",
                (owner, now, now, job_id),
            )
        return self.get(job_id)

    def heartbeat(self, job_id: int) -> None:
        """Say that the owner still runs the job."""
        with self.history.transaction() as conn:
            conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", (_now(), job_id))

    def release(self, job_id: int) -> None:
        """The owner stopped running the job."""
        with self.history.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET owner = '', heartbeat_at = NULL WHERE id = ?", (job_id,)
            )

    def claim_next(self, job_id: int) -> JobRow | None:
        """Take the next pending row for sending (``sending``, committed); ``None`` if none.

        One statement, so two workers (or two processes) can never take the same row.
        """
        with self.history.transaction() as conn:
            found = conn.execute(
                "UPDATE job_rows SET state = 'sending', sends = sends + 1, updated_at = ?"
                " WHERE job_id = ? AND row = (SELECT row FROM job_rows WHERE job_id = ?"
                " AND state = 'pending' ORDER BY row LIMIT 1)"
                f" RETURNING {_ROW_COLUMNS}",
                (_now(), job_id, job_id),
            ).fetchone()
        return None if found is None else _row(found)

    def finish_row(
        self,
        job_id: int,
        number: int,
        state: RowState,
        *,
        attempt_id: int | None = None,
        status_code: int | None = None,
        message_id: str = "",
        error: str = "",
    ) -> None:
        """Store the answer for a row."""
        with self.history.transaction() as conn:
            conn.execute(
                "UPDATE job_rows SET state = ?, attempt_id = coalesce(?, attempt_id),"
                " status_code = ?, message_id = ?, error = ?, updated_at = ?"
                " WHERE job_id = ? AND row = ?",
                (str(state), attempt_id, status_code, message_id, error, _now(), job_id,
                 number),
            )

    def _requeue(self, job_id: int, numbers: Iterable[int] | None, states: Iterable[RowState],
                 *, fresh_token: bool) -> int:
        wanted = [str(s) for s in states]
        marks = ", ".join("?" * len(wanted))
        sql = (
            "UPDATE job_rows SET state = 'pending', error = '', status_code = NULL,"
            " message_id = '', updated_at = ?, token = CASE WHEN ? THEN"
            " 'nd-' || lower(hex(randomblob(16))) ELSE token END"
            f" WHERE job_id = ? AND state IN ({marks})"
        )
        params: list[Any] = [_now(), 1 if fresh_token else 0, job_id, *wanted]
        with self.history.transaction() as conn:
            if numbers is None:
                return int(conn.execute(sql, params).rowcount)
            total = 0
            for number in numbers:
                total += conn.execute(sql + " AND row = ?", [*params, number]).rowcount
            return total

    def release_row(self, job_id: int, number: int, *, attempt_id: int | None = None,
                    status_code: int | None = None, error: str = "") -> None:
        """A claimed row was not accepted and is to be sent later with the same token.

        Used when the whole job stops on a 401/403: the service refused the request, so
        nothing was sent and the token is still unused.
        """
        with self.history.transaction() as conn:
            conn.execute(
                "UPDATE job_rows SET state = 'pending', attempt_id = coalesce(?, attempt_id),"
                " status_code = ?, error = ?, updated_at = ? WHERE job_id = ? AND row = ?"
                " AND state = 'sending'",
                (attempt_id, status_code, error, _now(), job_id, number),
            )

    def retry_rows(self, job_id: int, numbers: Iterable[int] | None = None,
                   states: Iterable[RowState] = (RowState.FAILED,)) -> int:
        """Put failed (or other settled) rows back to pending, each with a fresh token.

        Never takes ``sent`` or ``queued`` rows: those reached the service. Returns how
        many rows will be sent again.
        """
        allowed = [s for s in states if s not in (RowState.SENT, RowState.QUEUED,
                                                  RowState.SENDING, RowState.PENDING)]
        return self._requeue(job_id, numbers, allowed, fresh_token=True)

    def resolve_unknown(self, job_id: int, numbers: Iterable[int] | None, action: str) -> int:
        """Decide about rows whose answer never arrived.

        ``action`` is ``resend`` (the person accepts that the recipient may get it twice: the
        row is sent again with a fresh token), ``skip`` (leave it; it may have been
        delivered) or ``sent`` (the person checked that it arrived). Returns how many rows
        changed.
        """
        if action == "resend":
            return self._requeue(job_id, numbers, [RowState.UNKNOWN], fresh_token=True)
        if action not in ("skip", "sent"):
            raise ValueError("action must be 'resend', 'skip' or 'sent'")
        state = RowState.SKIPPED if action == "skip" else RowState.SENT
        note = (
            "Left as it was: the answer never arrived, so it may have been delivered."
            if action == "skip"
            else "Marked as sent by the person (the answer never arrived)."
        )
        sql = (
            "UPDATE job_rows SET state = ?, error = ?, updated_at = ?"
            " WHERE job_id = ? AND state = 'unknown'"
        )
        params: list[Any] = [str(state), note, _now(), job_id]
        with self.history.transaction() as conn:
            if numbers is None:
                return int(conn.execute(sql, params).rowcount)
            return sum(
                conn.execute(sql + " AND row = ?", [*params, n]).rowcount for n in numbers
            )

    def skip_rows(self, job_id: int, numbers: Iterable[int], reason: str = "") -> int:
        """Leave pending rows out of the job (e.g. rows with unfilled placeholders)."""
        with self.history.transaction() as conn:
            return sum(
                conn.execute(
                    "UPDATE job_rows SET state = 'skipped', error = ?, updated_at = ?"
                    " WHERE job_id = ? AND row = ? AND state = 'pending'",
                    (reason or "Skipped by the person.", _now(), job_id, n),
                ).rowcount
                for n in numbers
            )

    def cancel_pending(self, job_id: int) -> int:
        """Pending rows become ``cancelled``; returns how many."""
        with self.history.transaction() as conn:
            return int(
                conn.execute(
                    "UPDATE job_rows SET state = 'cancelled', error = 'Cancelled before it was"
                    " sent.', updated_at = ? WHERE job_id = ? AND state = 'pending'",
                    (_now(), job_id),
                ).rowcount
            )

    def cancel_job(self, job_id: int) -> int:
        """Cancel a job that no runner is running: pending rows become ``cancelled``."""
        n = self.cancel_pending(job_id)
        self.set_state(job_id, JobState.CANCELLED, "", "Cancelled.")
        return n

    def delete(self, job_id: int) -> None:
        """Forget a job and its rows (the history attempts it made stay)."""
        with self.history.transaction() as conn:
            conn.execute("DELETE FROM job_rows WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    # --- crash recovery ------------------------------------------------------------------------

    def recover(self) -> list[Job]:
        """Jobs left behind by a process that stopped mid-job, made resumable.

        A job whose owner is gone is released; when it was running it becomes ``paused``
        (reason ``interrupted``). Its ``sending`` rows become ``unknown`` (their request may
        have gone out: never resent without the person's say), each linked to its history
        attempt, which is completed as ``unknown`` too. A ``sending`` row with no recorded
        attempt never left (the attempt is committed before the request goes out) and goes
        back to ``pending``; one whose answer was recorded gets that answer. Returns the
        jobs recovered now.
        """
        candidates = self.history.connection().execute(
            "SELECT id FROM jobs WHERE owner <> '' OR id IN"
            " (SELECT DISTINCT job_id FROM job_rows WHERE state = 'sending')"
        ).fetchall()
        recovered: list[Job] = []
        for (job_id,) in candidates:
            job = self.get(job_id)
            if _owner_alive(job.owner, job.heartbeat_at, job.id):
                continue
            self._recover_one(job)
            recovered.append(self.get(job.id))
        return recovered

    def _recover_one(self, job: Job) -> None:
        in_flight = self.rows(job.id, [RowState.SENDING])
        for row in in_flight:
            entry = self.history.find_by_token(row.token)
            if entry is None:
                # Every send is recorded (committed) before its request goes out, so a row
                # without a recorded attempt never left: it simply waits for the resume.
                self.release_row(job.id, row.row)
                continue
            attempt_id = entry.id
            if entry.outcome is Outcome.PENDING:
                self.history.complete_attempt(
                    entry.id,
                    outcome=Outcome.UNKNOWN,
                    status_code=None,
                    meaning="The app stopped before the answer arrived: the message may have "
                    "been sent. Check its delivery events before sending it again.",
                )
            if entry is not None and entry.status_code in (401, 403):
                # Refused for the key: nothing was sent, the row can wait for a resume.
                self.release_row(job.id, row.row, attempt_id=entry.id,
                                 status_code=entry.status_code, error=entry.error)
                continue
            if entry is not None and entry.outcome is not Outcome.PENDING:
                # The answer was stored before the crash, only the row missed it.
                state = _ROW_FOR_OUTCOME[entry.outcome]
                self.finish_row(
                    job.id, row.row, state, attempt_id=entry.id,
                    status_code=entry.status_code, message_id=entry.message_id,
                    error=entry.error,
                )
                continue
            self.finish_row(
                job.id, row.row, RowState.UNKNOWN, attempt_id=attempt_id,
                error="The app stopped while this row was being sent: it may have been "
                "delivered. Check its events, or choose to send it again.",
            )
        unknown = len(self.rows(job.id, [RowState.UNKNOWN]))
        text = "The app stopped while the job ran."
        if unknown:
            text += (
                f" {unknown} row(s) are “unknown”: their answer never arrived, so they may "
                "have been delivered. Decide about them before sending them again."
            )
        if job.state is JobState.RUNNING:
            self.set_state(job.id, JobState.PAUSED, str(Reason.INTERRUPTED), text)
        self.release(job.id)
        log.warning("Recovered interrupted job %d (%d row(s) unknown).", job.id, unknown)

    def unfinished(self) -> list[Job]:
        """Jobs to offer at start-up: paused, ready, or with unknown rows to decide about."""
        out = []
        for job in self.jobs([JobState.PAUSED, JobState.READY, JobState.FINISHED,
                              JobState.RUNNING], limit=200):
            counts = self.counts(job.id)
            if job.state is JobState.FINISHED and not counts.get("unknown"):
                continue
            if job.state is JobState.RUNNING and _owner_alive(
                job.owner, job.heartbeat_at, job.id
            ):
                continue
            out.append(job)
        return out

    # --- results -----------------------------------------------------------------------------

    def write_results_csv(self, job_id: int, path: Path) -> int:
        """Write one line per row (row, email, state, status, message id, token, error, …).

        UTF-8 with a byte-order mark, so spreadsheets show accents right; values that a
        spreadsheet would run as a formula are prefixed with ``'``. Returns the row count.
        """
        rows = self.rows(job_id)
        tmp = path.with_name(path.name + ".part")
        with tmp.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["row", "email", "state", "status", "message_id", "token", "error", "name",
                 "line", "attempt_id"]
            )
            for r in rows:
                writer.writerow(
                    [_cell(v) for v in (
                        r.row, r.email, str(r.state),
                        "" if r.status_code is None else r.status_code,
                        r.message_id, r.token, r.error, r.name,
                        "" if r.line is None else r.line,
                        "" if r.attempt_id is None else r.attempt_id,
                    )]
                )
        os.replace(tmp, path)
        return len(rows)


def _cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def _clamp_concurrency(value: int) -> int:
    return max(1, min(MAX_CONCURRENCY, int(value)))


class JobError(Exception):
    """A job cannot be run as asked; the message says why."""


class JobBusyError(JobError):
    """Another live process is running the job."""


def reconcile_unknown(store: JobStore, client: NetcoreClient, job_id: int) -> int:
    """Ask the service's delivery events about ``unknown`` rows; mark those found as sent.

    A row whose token shows up in the events was accepted before the answer got lost, so it
    must not be sent again. Returns how many rows were confirmed; the others stay unknown.
    """
    confirmed = 0
    for row in store.rows(job_id, [RowState.UNKNOWN]):
        if row.attempt_id is None:
            entry = store.history.find_by_token(row.token)
        else:
            try:
                entry = store.history.get(row.attempt_id)
            except KeyError:
                entry = None
        if entry is None:
            continue
        lookup = fetch_events(client, entry)
        if lookup.ok and lookup.events:
            message_id = next((e.message_id for e in lookup.events if e.message_id), "")
            store.finish_row(
                job_id, row.row, RowState.SENT, attempt_id=entry.id, message_id=message_id,
                error=f"Confirmed by delivery events ({lookup.events[-1].name}).",
            )
            confirmed += 1
    return confirmed


# --- the runner --------------------------------------------------------------------------------

ProgressCallback = Callable[[JobProgress], None]
RowCallback = Callable[[JobRow], None]


class JobRunner:
    """Sends one job with a pool of worker threads; see the module docstring.

    ``service`` is bound to the job's profile; its API client (one keep-alive connection
    pool) is shared by every worker. ``on_progress`` is called from the runner's own thread
    (never a worker), at most every ``progress_interval`` seconds and on every change of the
    job's state; ``on_row`` from the worker that finished a row.
    """

    def __init__(
        self,
        service: SendService,
        job_id: int,
        *,
        on_progress: ProgressCallback | None = None,
        on_row: RowCallback | None = None,
        concurrency: int | None = None,
        rate_per_s: float | None = None,
        progress_interval: float = 0.1,
        heartbeat_interval: float = 2.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        pause_after_failures: int = 10,
        owner: str | None = None,
    ) -> None:
        """Bind the runner to a job; nothing runs until :meth:`start`."""
        self.service = service
        self.store = JobStore(service.history)
        self.job_id = job_id
        self.on_progress = on_progress
        self.on_row = on_row
        self.owner = owner or this_owner()
        self._progress_interval = progress_interval
        self._heartbeat_interval = heartbeat_interval
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._pause_after = pause_after_failures
        self._cond = threading.Condition()
        self._cancel = threading.Event()
        self._stop = False
        self._paused = False
        self._reason_code = ""
        self._reason = ""
        self._state = JobState.READY
        job = self.store.get(job_id)
        self._target = _clamp_concurrency(concurrency or job.concurrency)
        self._effective = self._target
        self._rate = rate_per_s if rate_per_s is not None else job.rate_per_s
        self._next_slot = 0.0
        self._not_before = 0.0
        self._failures = 0
        self._in_flight = 0
        self._drained = False
        self._counts: dict[str, int] = {}
        self._dirty = True
        self._workers: list[threading.Thread] = []
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._started_at = 0.0
        self._finished_rows = 0
        self._template: Draft | None = None
        self._html = ""
        self._error: BaseException | None = None

    # --- control (any thread) ------------------------------------------------------------------

    def start(self) -> None:
        """Start (or resume from the database) the job in the background."""
        if self._thread is not None:
            raise JobError("This runner was already started; make a new one to run again.")
        job = self.store.acquire(self.job_id, self.owner)
        with _ACTIVE_LOCK:
            _ACTIVE.add(self.job_id)
        self._state = JobState.RUNNING
        self._counts = self.store.counts(self.job_id)
        self._template = job.draft
        if job.concurrency != self._target:
            self.store.set_concurrency(self.job_id, self._target)
        if self._rate != job.rate_per_s:
            self.store.set_rate(self.job_id, self._rate)
        self._started_at = time.monotonic()
        self._thread = threading.Thread(
            target=self._supervise, name=f"bulk-job-{self.job_id}", daemon=True
        )
        self._thread.start()

    def pause(self, reason: str = "Paused.") -> None:
        """Stop taking new rows; rows being sent finish. :meth:`resume` goes on."""
        self._set_paused(str(Reason.PAUSED), reason)

    def resume(self) -> None:
        """Go on after a pause (the reason is cleared)."""
        with self._cond:
            if self._state is not JobState.PAUSED or self._stop:
                return
            self._paused = False
            self._failures = 0
            self._not_before = 0.0
            self._effective = self._target
            self._reason_code = self._reason = ""
            self._state = JobState.RUNNING
            self._drained = False
            self._dirty = True
            self._cond.notify_all()
            self.store.set_state(self.job_id, JobState.RUNNING)
        self._spawn_workers()

    def cancel(self) -> None:
        """Stop the job for good: pending rows become ``cancelled``.

        Requests in flight are not cut off (they may already have arrived); their retries
        stop.
        """
        with self._cond:
            self._cancel.set()
            self._state = JobState.CANCELLED
            self._dirty = True
            self._cond.notify_all()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Stop running and leave the job resumable (paused); returns whether it stopped.

        For quitting the app: rows being sent get their answer first (bounded by the
        client's timeout).
        """
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        return self.wait(timeout)

    def set_concurrency(self, value: int) -> None:
        """Use ``value`` workers from now on (1 to :data:`MAX_CONCURRENCY`)."""
        with self._cond:
            self._target = _clamp_concurrency(value)
            self._effective = min(max(self._effective, 1), self._target)
            if self._failures == 0:
                self._effective = self._target
            self._cond.notify_all()
        self.store.set_concurrency(self.job_id, self._target)
        self._spawn_workers()

    def set_rate(self, per_second: float | None) -> None:
        """Send at most ``per_second`` rows a second (``None`` or 0: as fast as allowed)."""
        with self._cond:
            self._rate = per_second or None
            self._next_slot = 0.0
            self._cond.notify_all()
        self.store.set_rate(self.job_id, self._rate)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the runner has stopped (finished, cancelled or stopped)."""
        return self._done.wait(timeout)

    def wait_for(self, predicate: Callable[[JobProgress], bool],
                 timeout: float | None = None) -> bool:
        """Wait until ``predicate(progress)`` holds or the runner stopped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not predicate(self._snapshot()):
                if self._done.is_set():
                    return predicate(self._snapshot())
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(0.05 if remaining is None else min(0.05, remaining))
            return True

    @property
    def progress(self) -> JobProgress:
        """Counts and state now."""
        with self._cond:
            return self._snapshot()

    @property
    def running(self) -> bool:
        """Whether the runner's threads are alive."""
        return self._thread is not None and not self._done.is_set()

    @property
    def concurrency(self) -> int:
        """Workers asked for."""
        return self._target

    # --- inside ------------------------------------------------------------------------------

    def _snapshot(self) -> JobProgress:
        elapsed = time.monotonic() - self._started_at if self._started_at else 0.0
        rate = self._finished_rows / elapsed if elapsed > 0 else 0.0
        return JobProgress(
            self.job_id, self._state, dict(self._counts), self._reason_code, self._reason, rate
        )

    def _move(self, old: RowState, new: RowState) -> None:
        # Called with the condition held.
        self._counts[str(old)] = self._counts.get(str(old), 0) - 1
        self._counts[str(new)] = self._counts.get(str(new), 0) + 1
        self._dirty = True

    def _set_paused(self, code: str, reason: str) -> None:
        with self._cond:
            if self._state is not JobState.RUNNING:
                return
            self._paused = True
            self._state = JobState.PAUSED
            self._reason_code, self._reason = code, reason
            self._dirty = True
            self._cond.notify_all()
            # Written under the lock so a quick resume cannot overtake it in the database.
            self.store.set_state(self.job_id, JobState.PAUSED, code, reason)
        log.info("Bulk job %d paused (%s): %s", self.job_id, code, reason)

    def _spawn_workers(self) -> None:
        with self._cond:
            self._workers = [w for w in self._workers if w.is_alive()]
            missing = self._target - len(self._workers)
            if self._done.is_set() or self._thread is None:
                return
            for _ in range(max(0, missing)):
                index = len(self._workers)
                worker = threading.Thread(
                    target=self._work, args=(index,), name=f"bulk-job-{self.job_id}-w{index}",
                    daemon=True,
                )
                self._workers.append(worker)
                worker.start()

    def _supervise(self) -> None:
        try:
            self._check_template()
            self._spawn_workers()
            last_beat = time.monotonic()
            last_emit = 0.0
            while True:
                with self._cond:
                    alive = any(w.is_alive() for w in self._workers)
                    dirty = self._dirty
                    finished = not alive and (
                        self._stop or self._cancel.is_set() or self._drained
                    )
                    if not finished:
                        self._cond.wait(self._progress_interval)
                now = time.monotonic()
                if finished:
                    break
                if dirty and now - last_emit >= self._progress_interval:
                    last_emit = now
                    self._emit()
                if now - last_beat >= self._heartbeat_interval:
                    last_beat = now
                    self.store.heartbeat(self.job_id)
            self._finish()
        except BaseException as exc:  # a broken database: stop, leave the job resumable
            log.exception("Bulk job %d stopped by an error", self.job_id)
            self._error = exc
            with self._cond:
                self._state = JobState.PAUSED
                self._reason_code, self._reason = str(Reason.SETUP), f"Stopped by an error: {exc}"
            try:
                self.store.set_state(self.job_id, JobState.PAUSED, str(Reason.SETUP),
                                     self._reason)
                self.store.release(self.job_id)
            except Exception:
                log.exception("could not record the error of job %d", self.job_id)
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self.job_id)
            self._emit(force=True)
            self._done.set()
            with self._cond:
                self._cond.notify_all()

    def _check_template(self) -> None:
        template = self._template
        if template is None:
            return
        self._html = render_html(template)
        first = self.store.rows(self.job_id, [RowState.PENDING], limit=1)
        if not first:
            return
        sample = row_draft(template, first[0])
        problems: list[Problem] = [
            p for p in run_checks(
                sample, api_version=self.service.profile.api_version,
                live=not self.service.profile.is_sandbox, rendered_html=self._html,
            )
            # Rows with unfilled placeholders are the person's call (flag_rows, skip_rows).
            if p.blocking and not p.field.startswith("recipients[")
        ]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self._set_paused(str(Reason.CHECKS), f"Not sent: {problems[0].message}{more}")

    def _finish(self) -> None:
        with self._cond:
            cancelled = self._cancel.is_set()
            stopped = self._stop
        if cancelled:
            self.store.cancel_pending(self.job_id)
        counts = self.store.counts(self.job_id)
        with self._cond:
            self._counts = counts
            left = counts.get("pending", 0) + counts.get("sending", 0)
            if cancelled:
                self._state = JobState.CANCELLED
                self._reason_code, self._reason = "", "Cancelled."
            elif self._state is JobState.PAUSED:
                pass  # stays paused with its reason
            elif left:
                self._state = JobState.PAUSED
                self._reason_code = str(Reason.INTERRUPTED)
                self._reason = (
                    "Stopped when the app was closed; resume to send the rest."
                    if stopped
                    else "Stopped before every row was sent; resume to send the rest."
                )
            else:
                self._state = JobState.FINISHED
                self._reason_code, self._reason = "", ""
            # Written under the lock so state changes reach the database in their order.
            self.store.set_state(self.job_id, self._state, self._reason_code, self._reason)
            self._dirty = True
        self.store.release(self.job_id)
        log.info("Bulk job %d: %s", self.job_id, self.progress.describe())

    def _emit(self, force: bool = False) -> None:
        with self._cond:
            if not (self._dirty or force):
                return
            self._dirty = False
            snapshot = self._snapshot()
            self._cond.notify_all()
        if self.on_progress is not None:
            try:
                self.on_progress(snapshot)
            except Exception:
                log.exception("a progress callback failed")

    def _next_row(self, index: int) -> JobRow | None:
        """Wait for permission to send, then claim a row; ``None`` when this worker is done."""
        while True:
            with self._cond:
                if self._stop or self._cancel.is_set():
                    return None
                if self._paused or self._drained:
                    # Workers end while paused (resume() starts them again) and when every
                    # row has been sent.
                    return None
                if index >= self._effective:
                    if index >= self._target:
                        return None
                    self._cond.wait(0.2)
                    continue
                now = time.monotonic()
                if self._not_before > now:
                    self._cond.wait(self._not_before - now)
                    continue
                if self._rate:
                    slot = max(self._next_slot, now)
                    if slot > now:
                        self._cond.wait(slot - now)
                        continue
                    self._next_slot = slot + 1.0 / self._rate
                self._in_flight += 1
            row = self.store.claim_next(self.job_id)
            with self._cond:
                if row is not None:
                    self._move(RowState.PENDING, RowState.SENDING)
                    return row
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._drained = True
                    self._cond.notify_all()
                    return None
                # Others are still sending; a row may come back (e.g. a 401 releases it).
                self._cond.wait(0.2)

    def _work(self, index: int) -> None:
        while True:
            row = self._next_row(index)
            if row is None:
                return
            try:
                self._send(row)
            except BaseException:
                log.exception("Bulk job %d row %d failed unexpectedly", self.job_id, row.row)
                self._settle(row, RowState.UNKNOWN, error="Stopped by an unexpected error: the "
                             "message may have been sent.")
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _draft_for(self, row: JobRow) -> tuple[Draft, str]:
        if self._template is not None:
            return row_draft(self._template, row), self._html
        if row.source_attempt is None:
            raise JobError(f"Row {row.row} has neither a template nor a history entry.")
        entry: HistoryEntry = self.service.history.get(row.source_attempt)
        draft = entry.draft
        tokens = envelope_tokens(row.token, len(draft.envelopes))
        draft = replace(
            draft,
            envelopes=tuple(replace(e, token=t) for e, t in zip(draft.envelopes, tokens,
                                                                   strict=True)),
        )
        html = render_html(draft) if (draft.body.strip() or draft.template_id is None) else ""
        return draft, html

    def _settle(self, row: JobRow, state: RowState, *, attempt_id: int | None = None,
                status_code: int | None = None, message_id: str = "", error: str = "") -> None:
        self.store.finish_row(
            self.job_id, row.row, state, attempt_id=attempt_id, status_code=status_code,
            message_id=message_id, error=error,
        )
        with self._cond:
            self._move(RowState.SENDING, state)
            self._finished_rows += 1
        if self.on_row is not None:
            try:
                self.on_row(replace(row, state=state, attempt_id=attempt_id,
                                    status_code=status_code, message_id=message_id,
                                    error=error))
            except Exception:
                log.exception("a row callback failed")

    def _send(self, row: JobRow) -> None:
        try:
            draft, html = self._draft_for(row)
            prepared = _prepared(self.service, draft, html)
        except (KeyError, ValueError, JobError) as exc:
            self._settle(row, RowState.FAILED, error=f"Could not build the message: {exc}")
            return
        try:
            outcome = self.service.send(
                prepared, resend_of=row.source_attempt, cancel=self._cancel, job_id=self.job_id
            )
        except SendError as exc:
            # Nothing was recorded or sent: the row waits, the job asks the person.
            self.store.release_row(self.job_id, row.row, error=str(exc))
            with self._cond:
                self._move(RowState.SENDING, RowState.PENDING)
            self._set_paused(str(Reason.SETUP), str(exc))
            return
        result = outcome.result
        state = _ROW_FOR_OUTCOME[result.outcome]
        error = "" if result.ok else result.summary()
        if state is RowState.REFUSED and result.status_code in (401, 403):
            # The key, its region or its scope: every other row would be refused the same
            # way. Nothing was accepted, so the row keeps its token and waits.
            self.store.release_row(
                self.job_id, row.row, attempt_id=outcome.attempt_id,
                status_code=result.status_code, error=error,
            )
            with self._cond:
                self._move(RowState.SENDING, RowState.PENDING)
            self._set_paused(
                str(Reason.AUTH),
                f"{result.meaning} The job is paused: fix the key or the profile, then resume.",
            )
            return
        self._settle(
            row, state, attempt_id=outcome.attempt_id, status_code=result.status_code,
            message_id=result.message_id or "", error=error,
        )
        if state is RowState.QUEUED:
            self._set_paused(
                str(Reason.DAILY_LIMIT),
                "Netcore accepted a message but queued it (HTTP 202): the account's daily "
                "limit may be reached, so delivery will be late. The job is paused so the "
                "rest are not queued too; resume when the limit resets. Queued rows are "
                "never sent again.",
            )
        elif state is RowState.FAILED:
            self._backoff()
        elif state is RowState.SENT:
            with self._cond:
                self._failures = 0
                if self._effective < self._target:
                    self._effective += 1
                    self._cond.notify_all()

    def _backoff(self) -> None:
        with self._cond:
            self._failures += 1
            failures = self._failures
            delay = min(self._backoff_max, self._backoff_base * 2 ** (failures - 1))
            self._not_before = max(self._not_before, time.monotonic() + delay)
            # Fewer requests at once while the service struggles; success adds them back.
            self._effective = max(1, self._effective // 2)
            self._cond.notify_all()
        log.info("Bulk job %d: %d failure(s) in a row, waiting %.1f s", self.job_id, failures,
                 delay)
        if failures >= self._pause_after:
            self._set_paused(
                str(Reason.FAILING),
                f"The service failed {failures} rows in a row, even after retries and "
                "waiting. The job is paused; resume to try again later.",
            )


__all__ = [
    "MAX_CONCURRENCY",
    "Job",
    "JobBusyError",
    "JobError",
    "JobKind",
    "JobProgress",
    "JobRow",
    "JobRunner",
    "JobState",
    "JobStore",
    "NewRow",
    "Reason",
    "RowPreview",
    "RowState",
    "envelope_tokens",
    "flag_rows",
    "preview_row",
    "reconcile_unknown",
    "row_credits",
    "row_draft",
    "row_envelope",
    "this_owner",
]
