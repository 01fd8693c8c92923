"""The sandbox's own SQLite store: every accepted message, templates and suppressions.

Writes use *group commit*: every request handled in one turn of the sandbox's event loop
queues its write, one callback at the end of that turn runs them all in one transaction,
commits once, and only then wakes the requests. A request is answered only after its row
is committed, yet a thousand requests a second cost a few hundred commits, not a thousand.
The commit runs on the event-loop thread itself: a separate writer thread was measured
slower, because every hand-over between the two threads waits for the GIL. The database
runs in WAL mode so that reads (on their own connection, from any thread) never wait for
the writer.

Tables (``schema_version`` 1):

``messages``
    one row per accepted send: ``message_id`` (32 hex), ``transport`` (``api``/``smtp``),
    ``api_version`` (``v6``, ``v5.1``, ``v5`` or ``smtp``), ``status_code`` (200/202, 250 for
    SMTP), ``status`` (``sent``/``queued``), ``received_at`` (Unix seconds), ``from_email``,
    ``subject``, ``tags`` (JSON list), ``headers`` (JSON object, without the key),
    ``body`` (the JSON text as received, or the raw MIME), ``meta`` (JSON, SMTP envelope),
    ``tokens`` (JSON list of the correlation tokens).
``tokens``
    ``(message_id, field, token)``, indexed on ``token``: one row per ``token_to``/``token_cc``/
    ``token_bcc`` of each envelope, or the ``X-APIHEADER`` of an SMTP message.
``recipients``
    ``(message_id, seq, email, kind, token, outcome)``, one row per to/cc/bcc address, with
    the outcome decided at send time (``sent``, ``dropped``, ``bounced``, ``queued``); the
    delivery events are synthesised from it.
``templates``, ``suppressions``
    the template and suppression endpoints' data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between two WAL checkpoints.
CHECKPOINT_INTERVAL_S: Final = 1.0

#: Upper bound of jobs per transaction, so one commit never holds many megabytes of bodies.
MAX_BATCH: Final = 512

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    transport TEXT NOT NULL,
    api_version TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    status TEXT NOT NULL,
    received_at REAL NOT NULL,
    from_email TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '[]',
    headers TEXT NOT NULL DEFAULT '{}',
    body TEXT NOT NULL,
    meta TEXT,
    tokens TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS messages_received_at ON messages (received_at);
CREATE TABLE IF NOT EXISTS tokens (
    message_id TEXT NOT NULL,
    field TEXT NOT NULL,
    token TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_token ON tokens (token);
CREATE INDEX IF NOT EXISTS tokens_message ON tokens (message_id);
CREATE TABLE IF NOT EXISTS recipients (
    message_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    email TEXT NOT NULL COLLATE NOCASE,
    kind TEXT NOT NULL,
    token TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recipients_message ON recipients (message_id);
CREATE INDEX IF NOT EXISTS recipients_email ON recipients (email);
CREATE INDEX IF NOT EXISTS recipients_token ON recipients (token);
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    html TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS suppressions (
    kind TEXT NOT NULL,
    value TEXT NOT NULL COLLATE NOCASE,
    created_at REAL NOT NULL,
    PRIMARY KEY (kind, value)
);
PRAGMA user_version = 1;
"""


@dataclass
class Recipient:
    """One to/cc/bcc address of a message and what became of it."""

    email: str
    kind: str
    token: str
    outcome: str


@dataclass
class MessageRecord:
    """Everything stored about one accepted message."""

    message_id: str
    transport: str
    api_version: str
    status_code: int
    status: str
    received_at: float
    body: str
    from_email: str = ""
    subject: str = ""
    tags: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] | None = None
    tokens: list[tuple[str, str]] = field(default_factory=list)
    recipients: list[Recipient] = field(default_factory=list)


class _Job:
    __slots__ = ("error", "fn", "future", "result")

    def __init__(
        self, fn: Callable[[sqlite3.Connection], Any], future: asyncio.Future[Any]
    ) -> None:
        self.fn = fn
        self.future = future
        self.result: Any = None
        self.error: BaseException | None = None


class StoreClosedError(RuntimeError):
    """A write was submitted after :meth:`Store.close`."""


class Store:
    """The SQLite file, its group-commit writer and one shared read connection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write = self._connect()
        self._write.executescript(_SCHEMA)
        self._read = self._connect()
        self._read_lock = threading.Lock()
        self._pending: list[_Job] = []
        self._closed = False
        self._stop_checkpoints = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoints, name="sandbox-store-checkpoint", daemon=True
        )
        self._checkpointer.start()
        #: Transactions committed and jobs they held, for the benchmark and the tests.
        self.commits = 0
        self.jobs = 0

    def _connect(self) -> sqlite3.Connection:
        # Autocommit mode: the writer issues BEGIN/COMMIT itself, around each batch.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process dying (no fsync per commit); only
        # a power cut can lose the last commits, which is fine for a sandbox.
        conn.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints (which do fsync) run in the checkpointer thread, never in a commit.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.row_factory = sqlite3.Row
        return conn

    # -- writing ---------------------------------------------------------------------------

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in the next group commit; return once it is committed.

        Must be awaited on the sandbox's event loop, the one thread that writes.
        """
        if self._closed:
            raise StoreClosedError("The sandbox store is closed.")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        if not self._pending:
            # call_soon runs the commit after every callback that is already ready, so all
            # the requests handled in this turn of the loop share one transaction.
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(_Job(fn, future))
        return await future

    def _flush(self, settle: bool = True) -> None:
        while self._pending:
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            self._run_batch(batch)
            self.commits += 1
            self.jobs += len(batch)
            if not settle:
                continue
            for job in batch:
                if job.future.done():  # the request was cancelled (its client went away)
                    continue
                if job.error is not None:
                    job.future.set_exception(job.error)
                else:
                    job.future.set_result(job.result)

    def _run_batch(self, batch: list[_Job]) -> None:
        conn = self._write
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                job.result = job.fn(conn)
            conn.execute("COMMIT")
            return
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(batch) == 1:
                batch[0].error = exc
                return
        # One job broke the shared transaction: run each alone so the others still land.
        for job in batch:
            job.result = None
            try:
                conn.execute("BEGIN IMMEDIATE")
                job.result = job.fn(conn)
                conn.execute("COMMIT")
            except Exception as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                job.error = exc

    def _checkpoints(self) -> None:
        """Copy the WAL into the database file now and then, off the event loop.

        A checkpoint fsyncs both files; done inside a commit (SQLite's default) it stalled
        every request for as long as the disk took, which halved the throughput.
        """
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=5000")
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_INTERVAL_S):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # busy or locked: the next round does it
                    log.debug("Checkpoint skipped: %s", exc)
        finally:
            conn.close()

    def close(self) -> None:
        """Commit whatever is still pending, fold the WAL into the file and close it."""
        if self._closed:
            return
        self._closed = True
        # Nothing should be left (every request awaited its commit), but if something is,
        # it is written; its waiter's loop is gone, so there is nobody to tell.
        self._flush(settle=False)
        self._stop_checkpoints.set()
        self._checkpointer.join()
        try:
            self._write.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            log.warning("Final checkpoint failed: %s", exc)
        self._write.close()
        with self._read_lock:
            self._read.close()

    # -- reading ---------------------------------------------------------------------------

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the read connection (any thread; serialised by a lock)."""
        with self._read_lock:
            return fn(self._read)


# -- the statements, as functions for Store.write / Store.read ------------------------------


def insert_message(rec: MessageRecord) -> Callable[[sqlite3.Connection], None]:
    """A write job storing ``rec`` with its tokens and recipients."""

    def job(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO messages (message_id, transport, api_version, status_code, status,"
            " received_at, from_email, subject, tags, headers, body, meta, tokens)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                rec.message_id,
                rec.transport,
                rec.api_version,
                rec.status_code,
                rec.status,
                rec.received_at,
                rec.from_email,
                rec.subject,
                json.dumps(rec.tags, ensure_ascii=False),
                json.dumps(rec.headers, ensure_ascii=False),
                rec.body,
                None if rec.meta is None else json.dumps(rec.meta, ensure_ascii=False),
                json.dumps([t for _, t in rec.tokens], ensure_ascii=False),
            ),
        )
        if rec.tokens:
            conn.executemany(
                "INSERT INTO tokens (message_id, field, token) VALUES (?,?,?)",
                [(rec.message_id, f, t) for f, t in rec.tokens],
            )
        if rec.recipients:
            conn.executemany(
                "INSERT INTO recipients (message_id, seq, email, kind, token, outcome)"
                " VALUES (?,?,?,?,?,?)",
                [
                    (rec.message_id, i, r.email, r.kind, r.token, r.outcome)
                    for i, r in enumerate(rec.recipients)
                ],
            )

    return job
