"""The local history of every send attempt, in SQLite, searchable as you type.

Netcore keeps no copy of sent content (``shared/netcore-api.md`` §5), so this history is the
only place it lives. Every attempt (HTTP API or SMTP) is written with the outcome
``pending`` *before* the request goes out (:meth:`History.record_attempt`) and updated when
the answer comes (:meth:`History.complete_attempt`): a crash in between leaves a
``pending`` row that says "this may have been sent", never a silent gap.

Storage: one SQLite file (``history.sqlite3`` in :func:`netcore_desktop.core.paths.data_dir`)
in WAL mode with a busy timeout, so the window and the command line can write at the same
time. Every write takes the write lock up front (``BEGIN IMMEDIATE``) so two writers queue
instead of failing with "database is locked". Commits are not fsynced one by one
(``synchronous=NORMAL``): a killed app loses nothing, a power cut may lose the last
moments. Checkpoints (copying the log into the file, with fsync) run in a background
thread every few dozen commits rather than inside the commit of a send; only when that
thread falls far behind (a slow disk) does a send wait for it, which keeps the log file
under a few megabytes. The schema
version is ``PRAGMA user_version``; :data:`MIGRATIONS` upgrades older files step by step
(keeping a copy of the old file) and a file from a newer version is refused, never
changed.

Free-text search uses an FTS5 index over subject, recipients, message id, correlation
tokens, tags and the body text; each typed word is a prefix query, so search-as-you-type
works from the first letter. Message ids of letters and digits (Netcore's) are matched
through the attempts table's own index instead, so that storing the answer to a send does
not re-index its whole message. Secrets never reach the file: callers pass payloads without
keys, and everything stored also goes through :func:`netcore_desktop.core.secrets.redact`.

Threads: each thread gets its own connection, so the window's worker thread and a bulk
job's thread can use one :class:`History` at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from netcore_desktop.core.contract import PLACEHOLDER_RE, normalise_event
from netcore_desktop.core.message import BodyFormat, Draft, draft_from_dict, draft_to_dict
from netcore_desktop.core.paths import data_dir
from netcore_desktop.core.render import html_to_text, substitute
from netcore_desktop.core.secrets import known_secrets, redact

if TYPE_CHECKING:
    from netcore_desktop.core.client import NetcoreClient

log = logging.getLogger(__name__)

#: File name of the history database inside the data directory.
FILE_NAME: Final = "history.sqlite3"

#: How long a writer waits for another process's write to finish before giving up.
BUSY_TIMEOUT_MS: Final = 30_000

#: A background thread copies the WAL into the database file after this many commits: a
#: checkpoint fsyncs both files, and inside a commit it stalled the send that triggered it.
_CHECKPOINT_EVERY: Final = 32
#: SQLite's own checkpoint inside a commit is the backstop: it runs only when the thread has
#: fallen behind (sends following each other with no pause for it to reach the end of the
#: log, which then keeps growing) and the log has reached this many pages. While the thread
#: is mid-pass the backstop cannot run either, so the log overshoots it: 400 pages of 8 KB
#: (3.3 MB) keeps it well under 8 MB; at 900 pages a busy machine let it reach 8.9 MB.
#: (Cutting the file back with journal_size_limit made every send slower: the file system
#: then allocates the log's blocks again and again.)
_AUTOCHECKPOINT_PAGES: Final = 400
#: The hard bound. On a slow disk one pass of the thread (its fsyncs) can outlast hundreds
#: of sends, and on a busy CI machine the log reached 20 MB that way. When a commit makes the
#: log file grow past this size, the writer waits for the thread's pass to end and then
#: checkpoints itself, so that the next commit starts the log again from the top. This costs
#: a send only when the thread has fallen that far behind.
_WAL_HARD_LIMIT_BYTES: Final = 5 * 1024 * 1024

#: Body text indexed for search is cut at this many characters: nobody searches for the end
#: of a 2 MB newsletter, and the index stays small.
_MAX_INDEXED_BODY: Final = 20_000

#: Personalised subjects indexed per attempt (one per envelope, up to this many).
_MAX_INDEXED_SUBJECTS: Final = 50

#: Stored JSON at least this long is compressed (shorter text gains too little).
_COMPRESS_FROM: Final = 512

#: Highest code point: ``prefix + _TOP`` is an upper bound for a prefix range on an index.
_TOP: Final = "\U0010ffff"

_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


class Outcome(StrEnum):
    """What became of a send attempt (used by the client, the CLI, the window and jobs)."""

    #: Recorded, the answer has not arrived (yet).
    PENDING = "pending"
    #: Accepted with a 2xx other than 202.
    SENT = "sent"
    #: Accepted but queued (202: the daily limit may be reached). Never resent automatically.
    QUEUED = "queued"
    #: Refused by the service (4xx) or by the SMTP relay (5xx reply).
    REFUSED = "refused"
    #: Failed: 5xx after every retry, or the network failed before the request went out.
    FAILED = "failed"
    #: May have been sent: the request went out and no answer came (read timeout).
    UNKNOWN = "unknown"
    #: Stopped by the person before it went out.
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """Whether the attempt has an answer (everything but ``pending``)."""
        return self is not Outcome.PENDING

    @property
    def accepted(self) -> bool:
        """Whether the service took the message (``sent`` or ``queued``)."""
        return self in (Outcome.SENT, Outcome.QUEUED)

    @classmethod
    def for_status(cls, status_code: int) -> Outcome:
        """The outcome an HTTP status stands for (contract §4)."""
        if status_code == 202:
            return cls.QUEUED
        if 200 <= status_code < 300:
            return cls.SENT
        if 400 <= status_code < 500:
            return cls.REFUSED
        return cls.FAILED


class HistoryError(Exception):
    """The history file cannot be opened or used; the message says what to do."""


# --- schema ----------------------------------------------------------------------------------

_SCHEMA_1: Final = """
CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    created_at    TEXT NOT NULL,
    completed_at  TEXT,
    profile       TEXT NOT NULL,
    transport     TEXT NOT NULL,
    api_version   TEXT NOT NULL,
    endpoint      TEXT NOT NULL,
    outcome       TEXT NOT NULL DEFAULT 'pending',
    status_code   INTEGER,
    meaning       TEXT NOT NULL DEFAULT '',
    message_id    TEXT NOT NULL DEFAULT '',
    subject       TEXT NOT NULL DEFAULT '',
    sender        TEXT NOT NULL DEFAULT '',
    recipients    TEXT NOT NULL DEFAULT '[]',
    tokens        TEXT NOT NULL DEFAULT '[]',
    tags          TEXT NOT NULL DEFAULT '[]',
    credits       INTEGER NOT NULL DEFAULT 0,
    response_body TEXT NOT NULL DEFAULT '',
    latency_ms    REAL,
    error         TEXT NOT NULL DEFAULT '',
    tries         INTEGER NOT NULL DEFAULT 1,
    resend_of     INTEGER REFERENCES attempts(id) ON DELETE SET NULL,
    -- Bulk jobs (a later schema version adds their tables) point their rows here.
    job_id        INTEGER,
    -- Last, so that scanning the columns above never reads these large values. JSON text,
    -- or the same text zlib-compressed in a BLOB when it is large (see _pack).
    draft_json    TEXT NOT NULL,
    payload_json  TEXT NOT NULL
);
CREATE INDEX attempts_created_at ON attempts(created_at);
CREATE INDEX attempts_profile ON attempts(profile);
CREATE INDEX attempts_outcome ON attempts(outcome);
CREATE INDEX attempts_message_id ON attempts(message_id) WHERE message_id <> '';
CREATE INDEX attempts_resend_of ON attempts(resend_of) WHERE resend_of IS NOT NULL;
CREATE INDEX attempts_job_id ON attempts(job_id) WHERE job_id IS NOT NULL;

-- One row per to/cc/bcc address; email is lower-cased for lookups.
CREATE TABLE attempt_recipients (
    attempt_id INTEGER NOT NULL REFERENCES attempts(id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL,
    envelope   INTEGER
);
CREATE INDEX attempt_recipients_email ON attempt_recipients(email, attempt_id);
CREATE INDEX attempt_recipients_attempt ON attempt_recipients(attempt_id);

-- One row per correlation token (one per envelope, contract §3).
CREATE TABLE attempt_tokens (
    token      TEXT NOT NULL,
    attempt_id INTEGER NOT NULL REFERENCES attempts(id) ON DELETE CASCADE,
    envelope   INTEGER NOT NULL
);
CREATE INDEX attempt_tokens_token ON attempt_tokens(token, attempt_id);
CREATE INDEX attempt_tokens_attempt ON attempt_tokens(attempt_id);

-- Tags, lower-cased for lookups.
CREATE TABLE attempt_tags (
    attempt_id INTEGER NOT NULL REFERENCES attempts(id) ON DELETE CASCADE,
    tag        TEXT NOT NULL
);
CREATE INDEX attempt_tags_tag ON attempt_tags(tag, attempt_id);
CREATE INDEX attempt_tags_attempt ON attempt_tags(attempt_id);
"""

# The search index is its own step so that it can be rebuilt from the rows alone: this step
# fills it from whatever attempts exist, and a later tokenizer change can do the same.
_SCHEMA_2: Final = """
CREATE VIRTUAL TABLE attempts_fts USING fts5(
    subject, recipients, message_id, tokens, tags, body,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '1 2 3'
);
"""


# Bulk jobs (issue 5): a job is a template draft plus one row per recipient, or a list of
# history entries to resend. A row's correlation token is written here before its request
# goes out, and its state moves pending -> sending -> a final state in separate commits, so
# after a crash a row left in "sending" is known to have been in flight (see core/jobs.py).
_SCHEMA_3: Final = """
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    finished_at   TEXT,
    name          TEXT NOT NULL DEFAULT '',
    kind          TEXT NOT NULL,
    profile       TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'ready',
    -- Why a job is paused: a code for the program and a sentence for the person.
    reason_code   TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL DEFAULT '',
    concurrency   INTEGER NOT NULL DEFAULT 4,
    rate_per_s    REAL,
    source        TEXT NOT NULL DEFAULT '',
    -- Which process runs the job ("host:pid") and when it last said so.
    owner         TEXT NOT NULL DEFAULT '',
    heartbeat_at  TEXT,
    draft_json    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX jobs_state ON jobs(state);

CREATE TABLE job_rows (
    job_id         INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    row            INTEGER NOT NULL,
    line           INTEGER,
    email          TEXT NOT NULL DEFAULT '',
    name           TEXT NOT NULL DEFAULT '',
    attributes     TEXT NOT NULL DEFAULT '{}',
    source_attempt INTEGER,
    state          TEXT NOT NULL DEFAULT 'pending',
    token          TEXT NOT NULL,
    attempt_id     INTEGER,
    status_code    INTEGER,
    message_id     TEXT NOT NULL DEFAULT '',
    error          TEXT NOT NULL DEFAULT '',
    sends          INTEGER NOT NULL DEFAULT 0,
    updated_at     TEXT,
    PRIMARY KEY (job_id, row)
) WITHOUT ROWID;
CREATE INDEX job_rows_state ON job_rows(job_id, state, row);
CREATE INDEX job_rows_token ON job_rows(token);
"""


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """Put the file in WAL mode and return the mode it is in.

    Switching a new file to WAL needs a moment of exclusive access, and SQLite answers
    "database is locked" at once (without its busy handler) when another process is doing
    the same: two processes opening a new history together. Waiting briefly is enough.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _migrate_1(conn: sqlite3.Connection) -> None:
    _executescript(conn, _SCHEMA_1)


def _migrate_2(conn: sqlite3.Connection) -> None:
    _executescript(conn, _SCHEMA_2)
    rows = conn.execute("SELECT id, message_id, draft_json FROM attempts ORDER BY id").fetchall()
    for attempt_id, message_id, draft_json in rows:
        try:
            draft = draft_from_dict(json.loads(_unpack(draft_json)))
        except (ValueError, TypeError) as exc:
            log.warning("History entry %s has an unreadable draft (%s).", attempt_id, exc)
            draft = Draft()
        doc = _search_document(draft)
        conn.execute(
            "INSERT INTO attempts_fts(rowid, subject, recipients, message_id, tokens, tags, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (attempt_id, doc[0], doc[1], message_id, doc[2], doc[3], doc[4]),
        )


def _executescript(conn: sqlite3.Connection, script: str) -> None:
    # sqlite3's executescript() commits first; running statement by statement keeps the
    # migration inside the caller's transaction.
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        conn.execute(statement)


def _migrate_3(conn: sqlite3.Connection) -> None:
    _executescript(conn, _SCHEMA_3)


#: ``MIGRATIONS[n]`` upgrades a schema of version ``n`` to ``n + 1``; the length is the
#: current version (3 added the bulk job tables).
MIGRATIONS: Final[list[Callable[[sqlite3.Connection], None]]] = [
    _migrate_1,
    _migrate_2,
    _migrate_3,
]


def schema_version() -> int:
    """The schema version this code writes."""
    return len(MIGRATIONS)


# --- entries ---------------------------------------------------------------------------------


def _format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time is the person's local time
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, _TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class HistoryEntry:
    """One send attempt as stored. ``draft`` and ``payload`` are decoded on first use.

    Entries from :meth:`History.search` load the stored draft and payload only when they are
    first asked for, so a list of results stays light even when messages carry attachments.
    """

    id: int
    created_at: datetime
    completed_at: datetime | None
    profile: str
    transport: str
    api_version: str
    endpoint: str
    outcome: Outcome
    status_code: int | None
    meaning: str
    message_id: str
    subject: str
    sender: str
    #: Every to/cc/bcc address (and the global bcc), as written.
    recipients: tuple[str, ...]
    #: Correlation tokens, one per envelope.
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    #: Credits the send costs (one per address, contract §5).
    credits: int
    response_body: str
    latency_ms: float | None
    error: str
    #: How many tries the send took (retries after 5xx or connection failures).
    attempts: int
    resend_of: int | None
    job_id: int | None
    _load: Callable[[], tuple[str, str]] = field(repr=False, compare=False)

    @cached_property
    def _blobs(self) -> tuple[str, str]:
        return self._load()

    @property
    def draft_json(self) -> str:
        """The draft as composed (``message.draft_to_dict`` JSON, Markdown source included)."""
        return self._blobs[0]

    @property
    def payload_json(self) -> str:
        """The rendered request body as JSON (without any key)."""
        return self._blobs[1]

    @cached_property
    def draft(self) -> Draft:
        """The draft as composed, ready to open again or resend."""
        return draft_from_dict(json.loads(self.draft_json))

    @cached_property
    def payload(self) -> dict[str, Any]:
        """The request body as it was sent."""
        value = json.loads(self.payload_json)
        return value if isinstance(value, dict) else {}

    @property
    def is_resend(self) -> bool:
        """Whether this attempt resent an earlier one."""
        return self.resend_of is not None


# Columns of ``attempts`` read into a HistoryEntry (the large ones are loaded separately).
_ENTRY_COLUMNS: Final = (
    "id, created_at, completed_at, profile, transport, api_version, endpoint, outcome, "
    "status_code, meaning, message_id, subject, sender, recipients, tokens, tags, credits, "
    "response_body, latency_ms, error, tries, resend_of, job_id"
)
_ENTRY_COLUMNS_A: Final = ", ".join("a." + c.strip() for c in _ENTRY_COLUMNS.split(","))


def _json_tuple(value: str) -> tuple[str, ...]:
    try:
        items = json.loads(value)
    except (TypeError, ValueError):
        return ()
    return tuple(str(i) for i in items) if isinstance(items, list) else ()


@dataclass(frozen=True)
class _Prepared:
    """Everything one attempt writes, computed outside the write lock."""

    profile: str
    transport: str
    api_version: str
    endpoint: str
    subject: str
    sender: str
    recipients: list[tuple[str, str, str, int | None]]  # email, name, kind, envelope
    tokens: list[tuple[str, int]]
    tags: list[str]
    credits: int
    draft_json: str | bytes
    payload_json: str | bytes
    resend_of: int | None
    job_id: int | None
    search: tuple[str, str, str, str, str]


def _search_document(draft: Draft) -> tuple[str, str, str, str, str]:
    """The text indexed for ``draft``: subject, recipients, tokens, tags, body."""
    recipients = " ".join(f"{a.email} {a.name}".strip() for a in draft.recipients())
    tokens = " ".join(e.token for e in draft.envelopes if e.token)
    tags = " ".join(draft.tags)
    if draft.body_format is BodyFormat.HTML:
        body = html_to_text(draft.body[: _MAX_INDEXED_BODY * 4])
    else:
        body = draft.body
    extra = [draft.sender.email, draft.sender.name, draft.reply_to]
    extra += [a.name for a in draft.attachments]
    for env in draft.envelopes:
        # Attribute values are what support staff search for: an invoice or order number.
        extra.extend(env.attributes.values())
    text = (body[:_MAX_INDEXED_BODY] + "\n" + " ".join(x for x in extra if x)).strip()
    # The subject as each recipient saw it ("Invoice INV-1042 is ready"), not only the
    # template with its placeholders; a bulk send's subjects are capped like its body.
    subjects = dict.fromkeys([draft.subject])
    if PLACEHOLDER_RE.search(draft.subject):
        for env in draft.envelopes[:_MAX_INDEXED_SUBJECTS]:
            subjects[substitute(draft.subject, env.attributes)] = None
    return ("\n".join(subjects), recipients, tokens, tags, text)


def _pack(text: str) -> str | bytes:
    """``text`` as stored: itself when short, zlib-compressed bytes (a BLOB) when long.

    Rendered HTML with inlined styles compresses five to ten times; the history is the one
    file that grows with every send.
    """
    if len(text) < _COMPRESS_FROM:
        return text
    return zlib.compress(text.encode("utf-8"), 6)


def _unpack(value: str | bytes) -> str:
    """The text :func:`_pack` stored."""
    if isinstance(value, bytes):
        return zlib.decompress(value).decode("utf-8")
    return str(value)


# The words the credential patterns of secrets.redact begin with ("Authorization: Bearer",
# "api_key="), matched the way those patterns match them (IGNORECASE).
_CREDENTIAL_WORDS: Final = re.compile(r"authorization|api[_-]?key", re.IGNORECASE)


@lru_cache(maxsize=8)
def _secret_forms(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """Each secret as written, JSON-escaped, and JSON-escaped twice."""
    forms: dict[str, None] = {}
    for secret in secrets:
        once = json.dumps(secret, ensure_ascii=False)[1:-1]
        forms.update(dict.fromkeys((secret, once, json.dumps(once, ensure_ascii=False)[1:-1])))
    return tuple(forms)


def _redaction_needed(text: str) -> bool:
    """Whether :func:`redact` could change ``text``, or a string serialised into it.

    ``text`` is plain text or JSON text (``ensure_ascii=False``). JSON escapes character by
    character, so a secret (or its escaped form, which redact also masks) or a word a
    credential pattern needs, inside any string of the JSON, is still found in the JSON
    text. ``False`` therefore means redacting every string would change nothing, and the
    walk over every string can be skipped.
    """
    if text.isascii():
        # The same test, several times faster: in ASCII text, matching without regard to
        # case is plain lower-casing (the look-alikes the pattern also accepts, such as the
        # Kelvin sign for "k", are not ASCII).
        low = text.lower()
        if "authorization" in low or any(w in low for w in ("apikey", "api_key", "api-key")):
            return True
    elif _CREDENTIAL_WORDS.search(text):
        return True
    return any(form in text for form in _secret_forms(known_secrets()))


def _redacted(text: str) -> str:
    return redact(text) if _redaction_needed(text) else text


def _redact_tree(value: Any, key: str = "") -> Any:
    """A copy of a JSON-ready value with every string redacted (before JSON escapes it)."""
    if isinstance(value, str):
        # Attachment bodies are base64: only known secrets are looked for there, so the
        # header patterns can never change a byte of a file.
        return redact(value, patterns=key != "content")
    if isinstance(value, dict):
        return {k: _redact_tree(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_tree(v, key) for v in value]
    return value


def _payload_tokens(payload: dict[str, Any]) -> list[str]:
    out: list[str] = []
    envelopes = payload.get("personalizations")
    if isinstance(envelopes, list):
        for env in envelopes:
            if isinstance(env, dict):
                token = env.get("token_to")
                out.append(token if isinstance(token, str) else "")
    return out


def _prepare(
    *,
    draft: Draft,
    payload: dict[str, Any],
    profile: str,
    transport: str,
    api_version: str,
    endpoint: str,
    resend_of: int | None,
    job_id: int | None,
    payload_json: bytes | None = None,
) -> _Prepared:
    recipients: list[tuple[str, str, str, int | None]] = []
    for index, env in enumerate(draft.envelopes):
        for kind, addresses in (("to", env.to), ("cc", env.cc), ("bcc", env.bcc)):
            recipients.extend((a.email, a.name, kind, index) for a in addresses)
    recipients.extend((a.email, a.name, "bcc", None) for a in draft.bcc)

    # The draft is the source of truth; the payload fills in when a caller added tokens
    # only to the request body.
    from_payload = _payload_tokens(payload)
    tokens: list[tuple[str, int]] = []
    for index, env in enumerate(draft.envelopes):
        token = env.token or (from_payload[index] if index < len(from_payload) else "")
        if token:
            tokens.append((token, index))

    doc = _search_document(draft)
    if not doc[2] and tokens:
        doc = (doc[0], doc[1], " ".join(t for t, _ in tokens), doc[3], doc[4])
    # The index keeps its own copy of the text, so it is redacted like everything else.
    search = (_redacted(doc[0]), _redacted(doc[1]), doc[2], _redacted(doc[3]), _redacted(doc[4]))
    # Defence in depth: callers never pass keys, and redaction catches any that slip in.
    # Both documents are serialised once and only walked string by string when a secret
    # or a credential could be in them; the payload is usually the request body itself.
    draft_text = json.dumps(draft_to_dict(draft), ensure_ascii=False)
    if _redaction_needed(draft_text):
        draft_text = json.dumps(_redact_tree(draft_to_dict(draft)), ensure_ascii=False)
    if payload_json is None:
        payload_text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    else:
        payload_text = payload_json.decode("utf-8")
    if _redaction_needed(payload_text):
        payload_text = json.dumps(
            _redact_tree(payload), ensure_ascii=False, separators=(",", ":")
        )
    return _Prepared(
        profile=profile,
        transport=str(transport),
        api_version=str(api_version),
        endpoint=endpoint,
        subject=_redacted(draft.subject),
        sender=draft.sender.email,
        recipients=recipients,
        tokens=tokens,
        tags=list(dict.fromkeys(draft.tags)),
        credits=draft.credit_count(),
        draft_json=_pack(draft_text),
        payload_json=_pack(payload_text),
        resend_of=resend_of,
        job_id=job_id,
        search=search,
    )


# --- search queries --------------------------------------------------------------------------


def fts_query(text: str, column: str | None = None) -> str | None:
    """An FTS5 query matching every word of ``text`` as a prefix, or ``None`` if nothing to match.

    Each whitespace-separated word becomes a quoted phrase with a trailing ``*`` (quotes in
    it doubled), so operators, quotes, ``*``, ``-`` or ``:`` typed by a person are matched
    as text and never raise. Words without a letter or digit are dropped (they would match
    nothing and hide every result).
    """
    # SQLite reads the query as a C string: a NUL would cut it short mid-phrase.
    text = text.replace("\x00", " ")
    phrases = [
        '"' + word.replace('"', '""') + '"*'
        for word in text.split()
        if any(ch.isalnum() for ch in word)
    ]
    if not phrases:
        return None
    query = " AND ".join(phrases)
    if column:
        return f"{{{column}}} : ({query})"
    return query


def _prefix_range(value: str) -> tuple[str, str]:
    value = value.strip()
    return value, value + _TOP


#: A message id of ASCII letters and digits in one case, such as Netcore's 32 hex digits: the
#: text index reads it as one word, so a typed word matches it exactly when the word's one
#: token starts it (case aside). Such ids are found through attempts.message_id and its
#: index (see History._id_matches); any other id (an SMTP Message-ID) is in the text index.
_SIMPLE_ID: Final = re.compile(r"[0-9a-z]+|[0-9A-Z]+")


def _id_key(word: str) -> str | None:
    """What a simple message id must start with (lower-cased) to match ``word``, if anything.

    The text index reads ``word`` as its runs of letters and digits; a phrase of one run
    matches a one-word id that starts with it, a phrase of several runs matches none. A word
    with a letter, digit or mark outside ASCII is left to the text index: it could only
    match an ASCII id through the index's folding of accents ("é" read as "e"), which
    nobody types into a message id.
    """
    runs: list[str] = []
    run = ""
    for ch in word:
        if ch.isascii():
            if ch.isalnum():
                run += ch.lower()
                continue
        elif unicodedata.category(ch)[0] in "LNM" or unicodedata.category(ch) == "Co":
            return None
        if run:  # a separator ends a run
            runs.append(run)
            run = ""
    if run:
        runs.append(run)
    return runs[0] if len(runs) == 1 else None


# --- the store -------------------------------------------------------------------------------


class History:
    """The send history in one SQLite file. Thread-safe; safe with other processes too."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else data_dir() / FILE_NAME
        self._local = threading.local()
        self._lock = threading.Lock()
        self._write_lock = threading.RLock()
        # Every connection with the thread that owns it, so that close() can close them all
        # and the connections of threads that have ended are closed when a new one opens.
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._closed = False
        # Commits so far, and the thread that checkpoints every _CHECKPOINT_EVERY of them.
        self._commits = 0
        self._checkpoint_wanted = threading.Event()
        self._checkpointer: threading.Thread | None = None
        # Held by the checkpoint thread during a pass; a writer over the hard limit waits on it.
        self._checkpoint_pass = threading.Lock()
        self._wal_path = self.path.with_name(self.path.name + "-wal")
        self._wal_size_seen = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Owner-only from the start: the file holds the content of every message sent.
            self.path.touch(mode=0o600, exist_ok=True)
        self._migrate(self._conn())

    # --- connections ---------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise HistoryError("The history is closed.")
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=BUSY_TIMEOUT_MS / 1000,
                    isolation_level=None,  # transactions are explicit (BEGIN IMMEDIATE)
                    check_same_thread=False,  # only so that close() can close it
                )
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                # Only takes effect on a new, empty file (before WAL is switched on): stored
                # messages of 2-4 KB waste half of every 4 KB page.
                conn.execute("PRAGMA page_size = 8192")
                mode = _switch_to_wal(conn)
                if str(mode).lower() != "wal":
                    log.warning("History %s is in %s mode, not WAL.", self.path, mode)
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(f"PRAGMA wal_autocheckpoint = {_AUTOCHECKPOINT_PAGES}")
                conn.execute("PRAGMA foreign_keys = ON")
            except sqlite3.DatabaseError as exc:
                raise HistoryError(
                    f"Cannot open the history file {self.path}: {exc}. If it is damaged, "
                    "move it away and Netcore Desktop will start a new one."
                ) from exc
            self._close_orphans()
            self._connections.append((threading.current_thread(), conn))
            self._local.conn = conn
            return conn

    def close(self) -> None:
        """Close every connection. Call it after the threads using this history have stopped."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            self._checkpoint_wanted.set()  # it sees _closed and ends
            checkpointer.join()
        for _thread, conn in connections:
            try:
                conn.close()
            except sqlite3.Error as exc:  # closing is best effort
                log.debug("Closing a history connection failed: %s", exc)
        self._local = threading.local()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close_orphans(self) -> None:
        # Called with self._lock held. A worker pool's threads come and go; their
        # connections (each with its own page cache) would otherwise live until close().
        alive = []
        for thread, conn in self._connections:
            if thread.is_alive():
                alive.append((thread, conn))
            else:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    log.debug("Closing a finished thread's history connection failed: %s", exc)
        self._connections = alive

    def open_connections(self) -> int:
        """How many connections are open (one per thread that used this history)."""
        with self._lock:
            return len(self._connections)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        # Threads of this process queue on a Python lock: SQLite's own busy handler sleeps
        # in steps of up to 100 ms, which stalls a bulk job's workers writing side by side.
        # Other processes still meet the SQLite lock and its busy timeout.
        with self._write_lock:
            # IMMEDIATE takes the write lock now (waiting up to the busy timeout) instead of
            # at the first write, where a second writer would fail at once with "locked".
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            self._commits += 1
            if self._commits % _CHECKPOINT_EVERY == 0:
                self._want_checkpoint()
            self._bound_wal(conn)

    def _bound_wal(self, conn: sqlite3.Connection) -> None:
        """Checkpoint here, after the thread's pass, if the log file grew past the hard limit.

        Called with the write lock held, so no frame is added meanwhile and the checkpoint
        can reach the end of the log. The file only grows while the log is being appended
        past its old end; once the log starts again from the top, the file keeps its size
        and no longer grows, so a large but idle file costs nothing here.
        """
        try:
            size = os.stat(self._wal_path).st_size
        except OSError:
            return
        grew, self._wal_size_seen = size > self._wal_size_seen, size
        if not grew or size <= _WAL_HARD_LIMIT_BYTES:
            return
        with self._checkpoint_pass:
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:  # another process holds it: the next commit tries
                log.debug("History checkpoint at the hard limit skipped: %s", exc)

    def _want_checkpoint(self) -> None:
        """Ask the checkpoint thread (started on first use) to fold the WAL into the file."""
        with self._lock:
            if self._closed:
                return
            if self._checkpointer is None:
                self._checkpointer = threading.Thread(
                    target=self._checkpoints, name="history-checkpoint", daemon=True
                )
                self._checkpointer.start()
        self._checkpoint_wanted.set()

    def _checkpoints(self) -> None:
        """The checkpoint thread: a PASSIVE checkpoint each time one is wanted.

        PASSIVE never waits for readers or writers (of this or another process); what it
        cannot copy yet is copied next time. The sqlite3 module lets go of the GIL while
        SQLite works, so the sending thread runs on meanwhile.
        """
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self._checkpoint_wanted.wait()
                self._checkpoint_wanted.clear()
                if self._closed:
                    return
                with self._checkpoint_pass:
                    try:
                        # Only a log copied to its very end is started again from the top by
                        # the next writer (otherwise it keeps growing), and a pass copies the
                        # frames that were there when it began: pass again while commits come.
                        seen = -1
                        for _ in range(4):
                            busy, frames, copied = conn.execute(
                                "PRAGMA wal_checkpoint(PASSIVE)"
                            ).fetchall()[0]
                            if busy or (frames == seen and copied >= frames):
                                break
                            seen = frames
                    except sqlite3.Error as exc:  # busy or locked: the next round does it
                        log.debug("History checkpoint skipped: %s", exc)
        finally:
            conn.close()

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction on this thread's connection (for the bulk job store).

        The write lock is taken at once and the transaction commits when the block ends
        (rolls back on an exception). Keep it short: other writers wait for it.
        """
        return self._write()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, for reads (for the bulk job store)."""
        return self._conn()

    def _migrate(self, conn: sqlite3.Connection) -> None:
        target = schema_version()
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise HistoryError(
                f"{self.path} is not a history file ({exc}). Move it away and Netcore "
                "Desktop will start a new one."
            ) from exc
        if version > target:
            raise HistoryError(
                f"The history file {self.path} was written by a newer version of Netcore "
                f"Desktop (schema {version}, this version knows {target}). It was left as it "
                "is: update Netcore Desktop to use it."
            )
        if version == target:
            return
        if version > 0:
            backup = self.path.with_name(f"{self.path.name}.schema{version}.bak")
            self._backup(conn, backup)
        try:
            with self._write():
                # Another process may have migrated while this one waited for the lock.
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                for step in range(version, target):
                    MIGRATIONS[step](conn)
                    log.info("History %s: schema %d -> %d.", self.path, step, step + 1)
                conn.execute(f"PRAGMA user_version = {target}")
        except sqlite3.DatabaseError as exc:
            raise HistoryError(
                f"Could not prepare the history file {self.path} ({exc}). It was left as it "
                "was; if it is not a Netcore Desktop history, move it away."
            ) from exc

    def _backup(self, conn: sqlite3.Connection, target: Path) -> None:
        if target.exists():
            return
        dest = sqlite3.connect(target)
        try:
            conn.backup(dest)
        finally:
            dest.close()
        log.info("Saved a copy of the history before upgrading it: %s", target)

    # --- writing -------------------------------------------------------------------------

    def record_attempt(
        self,
        *,
        draft: Draft,
        payload: dict[str, Any],
        profile: str,
        transport: str,
        api_version: str,
        endpoint: str,
        resend_of: int | None = None,
        job_id: int | None = None,
        payload_json: bytes | None = None,
    ) -> int:
        """Record an attempt as ``pending`` before it is sent; returns its id.

        ``draft`` is stored as composed (Markdown source included), ``payload`` is the
        rendered request body (never with a key in it), ``endpoint`` the URL or SMTP host it
        goes to. ``resend_of`` links a resend to the attempt it repeats. ``payload_json``,
        when given, is ``payload`` already serialised (the exact request body, UTF-8 JSON):
        it is stored as it is instead of being serialised again.
        """
        prepared = _prepare(
            draft=draft,
            payload=payload,
            profile=profile,
            transport=transport,
            api_version=api_version,
            endpoint=endpoint,
            resend_of=resend_of,
            job_id=job_id,
            payload_json=payload_json,
        )
        with self._write() as conn:
            return self._insert(conn, prepared, datetime.now(UTC))

    def _insert(
        self,
        conn: sqlite3.Connection,
        p: _Prepared,
        created_at: datetime,
        completion: dict[str, Any] | None = None,
    ) -> int:
        done = completion or {}
        cursor = conn.execute(
            "INSERT INTO attempts (created_at, completed_at, profile, transport, api_version,"
            " endpoint, outcome, status_code, meaning, message_id, subject, sender, recipients,"
            " tokens, tags, credits, response_body, latency_ms, error, tries, resend_of,"
            " job_id, draft_json, payload_json)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                _format_time(created_at),
                _format_time(done["completed_at"]) if done.get("completed_at") else None,
                p.profile,
                p.transport,
                p.api_version,
                p.endpoint,
                str(done.get("outcome", Outcome.PENDING)),
                done.get("status_code"),
                done.get("meaning", ""),
                done.get("message_id", ""),
                p.subject,
                p.sender,
                json.dumps([r[0] for r in p.recipients], ensure_ascii=False),
                json.dumps([t for t, _ in p.tokens], ensure_ascii=False),
                json.dumps(p.tags, ensure_ascii=False),
                p.credits,
                done.get("response_body", ""),
                done.get("latency_ms"),
                done.get("error", ""),
                done.get("attempts", 1),
                p.resend_of,
                p.job_id,
                p.draft_json,
                p.payload_json,
            ),
        )
        attempt_id = cursor.lastrowid
        assert attempt_id is not None
        conn.executemany(
            "INSERT INTO attempt_recipients (attempt_id, email, name, kind, envelope)"
            " VALUES (?, ?, ?, ?, ?)",
            [(attempt_id, e.lower(), n, k, i) for e, n, k, i in p.recipients],
        )
        conn.executemany(
            "INSERT INTO attempt_tokens (token, attempt_id, envelope) VALUES (?, ?, ?)",
            [(t, attempt_id, i) for t, i in p.tokens],
        )
        conn.executemany(
            "INSERT INTO attempt_tags (attempt_id, tag) VALUES (?, ?)",
            [(attempt_id, t.lower()) for t in p.tags],
        )
        s = p.search
        conn.execute(
            "INSERT INTO attempts_fts(rowid, subject, recipients, message_id, tokens, tags, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (attempt_id, s[0], s[1], done.get("message_id", ""), s[2], s[3], s[4]),
        )
        return attempt_id

    def _bulk_insert(
        self, rows: Iterable[tuple[_Prepared, datetime, dict[str, Any] | None]]
    ) -> list[int]:
        """Insert many finished attempts in one transaction (benchmarks and imports)."""
        with self._write() as conn:
            return [self._insert(conn, p, created, done) for p, created, done in rows]

    def complete_attempt(
        self,
        attempt_id: int,
        *,
        outcome: str,
        status_code: int | None,
        meaning: str,
        message_id: str = "",
        response_body: str = "",
        latency_ms: float | None = None,
        error: str = "",
        attempts: int = 1,
    ) -> None:
        """Store the answer to attempt ``attempt_id`` (``KeyError`` if there is no such attempt).

        ``outcome`` is an :class:`Outcome` value; ``attempts`` is how many tries it took.
        """
        final = Outcome(outcome)
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE attempts SET completed_at = ?, outcome = ?, status_code = ?, meaning = ?,"
                " message_id = ?, response_body = ?, latency_ms = ?, error = ?, tries = ?"
                " WHERE id = ?",
                (
                    _format_time(datetime.now(UTC)),
                    str(final),
                    status_code,
                    redact(meaning),
                    message_id,
                    redact(response_body),
                    latency_ms,
                    redact(error),
                    attempts,
                    attempt_id,
                ),
            )
            if cursor.rowcount == 0:
                raise KeyError(attempt_id)
            # Changing one column of a text index entry re-indexes the whole entry, which
            # cost as much as indexing the message in the first place. A simple id (see
            # _SIMPLE_ID) is found through attempts.message_id instead, so the entry is only
            # rewritten for other ids; the WHERE leaves it alone when it already holds that.
            indexed = "" if _SIMPLE_ID.fullmatch(message_id) else message_id
            conn.execute(
                "UPDATE attempts_fts SET message_id = ? WHERE rowid = ? AND message_id <> ?",
                (indexed, attempt_id, indexed),
            )

    # --- reading -------------------------------------------------------------------------

    def _loader(self, attempt_id: int) -> Callable[[], tuple[str, str]]:
        def load() -> tuple[str, str]:
            row = (
                self._conn()
                .execute(
                    "SELECT draft_json, payload_json FROM attempts WHERE id = ?", (attempt_id,)
                )
                .fetchone()
            )
            if row is None:
                raise KeyError(attempt_id)
            return _unpack(row[0]), _unpack(row[1])

        return load

    def _entry(self, row: Sequence[Any], blobs: tuple[str, str] | None = None) -> HistoryEntry:
        loader: Callable[[], tuple[str, str]]
        if blobs is not None:
            loaded = blobs

            def loader() -> tuple[str, str]:
                return loaded
        else:
            loader = self._loader(int(row[0]))
        return HistoryEntry(
            id=int(row[0]),
            created_at=_parse_time(row[1]) or datetime.fromtimestamp(0, UTC),
            completed_at=_parse_time(row[2]),
            profile=row[3],
            transport=row[4],
            api_version=row[5],
            endpoint=row[6],
            outcome=Outcome(row[7]),
            status_code=row[8],
            meaning=row[9],
            message_id=row[10],
            subject=row[11],
            sender=row[12],
            recipients=_json_tuple(row[13]),
            tokens=_json_tuple(row[14]),
            tags=_json_tuple(row[15]),
            credits=row[16],
            response_body=row[17],
            latency_ms=row[18],
            error=row[19],
            attempts=row[20],
            resend_of=row[21],
            job_id=row[22],
            _load=loader,
        )

    def get(self, attempt_id: int) -> HistoryEntry:
        """The attempt ``attempt_id`` with its draft and payload (``KeyError`` if none)."""
        row = (
            self._conn()
            .execute(
                f"SELECT {_ENTRY_COLUMNS}, draft_json, payload_json FROM attempts WHERE id = ?",
                (attempt_id,),
            )
            .fetchone()
        )
        if row is None:
            raise KeyError(attempt_id)
        return self._entry(row[:-2], (_unpack(row[-2]), _unpack(row[-1])))

    def _where(
        self,
        text: str,
        recipient: str | None,
        subject: str | None,
        message_id: str | None,
        token: str | None,
        tag: str | None,
        profile: str | None,
        outcome: str | Iterable[str] | None,
        since: datetime | None,
        until: datetime | None,
    ) -> tuple[str | None, list[str], list[Any]]:
        """The FTS match (or ``None``), the WHERE clauses on ``a`` and their parameters."""
        matches = [q for q in (fts_query(text), fts_query(subject or "", "subject")) if q]
        clauses: list[str] = []
        params: list[Any] = []
        if recipient and recipient.strip():
            clauses.append(
                "a.id IN (SELECT attempt_id FROM attempt_recipients WHERE email >= ? AND email < ?)"
            )
            params.extend(_prefix_range(recipient.lower()))
        if message_id and message_id.strip():
            clauses.append("a.message_id >= ? AND a.message_id < ?")
            params.extend(_prefix_range(message_id))
        if token and token.strip():
            clauses.append(
                "a.id IN (SELECT attempt_id FROM attempt_tokens WHERE token >= ? AND token < ?)"
            )
            params.extend(_prefix_range(token))
        if tag and tag.strip():
            clauses.append("a.id IN (SELECT attempt_id FROM attempt_tags WHERE tag = ?)")
            params.append(tag.strip().lower())
        if profile:
            clauses.append("a.profile = ?")
            params.append(profile)
        if outcome is not None:
            wanted = (
                [str(Outcome(outcome))]
                if isinstance(outcome, str)
                else [str(Outcome(o)) for o in outcome]
            )
            clauses.append(f"a.outcome IN ({', '.join('?' * len(wanted))})" if wanted else "0")
            params.extend(wanted)
        if since is not None:
            clauses.append("a.created_at >= ?")
            params.append(_format_time(since))
        if until is not None:
            clauses.append("a.created_at < ?")
            params.append(_format_time(until))
        return (" AND ".join(matches) or None), clauses, params

    def search(
        self,
        text: str = "",
        *,
        recipient: str | None = None,
        subject: str | None = None,
        message_id: str | None = None,
        token: str | None = None,
        tag: str | None = None,
        profile: str | None = None,
        outcome: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[HistoryEntry]:
        """Attempts matching every given criterion, newest first.

        ``text`` is free text over subject, recipients, message id, tokens, tags and body;
        each word matches as a prefix (search as you type). ``subject`` matches words of the
        subject the same way. ``recipient``, ``message_id`` and ``token`` match from the
        start (a whole address is an exact match), case-insensitively for addresses. ``tag``
        and ``profile`` match exactly; ``outcome`` is one or several :class:`Outcome` values.
        ``since`` is inclusive, ``until`` exclusive; a naive datetime is local time.
        """
        match, clauses, params = self._where(
            text, recipient, subject, message_id, token, tag, profile, outcome, since, until
        )
        where = "".join(f" AND {c}" for c in clauses)
        if match is not None:
            # CROSS JOIN keeps the index as the outer loop, walked newest first, so the LIMIT
            # stops the walk early instead of sorting every match.
            sql = (
                f"SELECT {_ENTRY_COLUMNS_A} FROM attempts_fts CROSS JOIN attempts a"
                f" ON a.id = attempts_fts.rowid WHERE attempts_fts MATCH ?{where}"
                " ORDER BY attempts_fts.rowid DESC LIMIT ? OFFSET ?"
            )
            args: list[Any] = [match, *params, limit, offset]
        else:
            sql = (
                f"SELECT {_ENTRY_COLUMNS_A} FROM attempts a WHERE 1{where}"
                " ORDER BY a.id DESC LIMIT ? OFFSET ?"
            )
            args = [*params, limit, offset]
        conn = self._conn()
        found = self._id_matches(conn, text, subject, clauses, params) if match else []
        if not found:
            rows = conn.execute(sql, args).fetchall()
            return [self._entry(row) for row in rows]
        # Some attempts are found through their message id: the page is cut from both lists
        # together, each taken as far as the end of the page.
        args[-2:] = [limit + offset, 0]
        by_id = {row[0]: row for row in conn.execute(sql, args).fetchall()}
        page = sorted(set(by_id) | set(found[: limit + offset]), reverse=True)
        page = page[offset : offset + limit]
        missing = [i for i in page if i not in by_id]
        if missing:
            for row in conn.execute(
                f"SELECT {_ENTRY_COLUMNS_A} FROM attempts a"
                " WHERE a.id IN (SELECT value FROM json_each(?))",
                (json.dumps(missing),),
            ):
                by_id[row[0]] = row
        return [self._entry(by_id[i]) for i in page]

    def _id_matches(
        self,
        conn: sqlite3.Connection,
        text: str,
        subject: str | None,
        clauses: Sequence[str],
        params: Sequence[Any],
    ) -> list[int]:
        """Attempts matching ``text`` only thanks to a simple message id, newest first.

        The text index has every word of an attempt but its simple message id (see
        :data:`_SIMPLE_ID`); an attempt matches when every word matches its indexed text
        or its message id. The candidates are the attempts whose id starts with a word (a
        range on the message id index); the words their id does not match are then looked
        up in the text index, with ``subject``, and the other criteria applied last.
        """
        words = [w for w in text.replace("\x00", " ").split() if any(c.isalnum() for c in w)]
        keys = [_id_key(w) for w in words]
        distinct = sorted({k for k in keys if k})
        # Which keys each candidate's id starts with, one bit per key. Only simple ids are
        # candidates (all letters in one case): other ids are in the text index already.
        hits: dict[int, int] = {}
        for bit, key in enumerate(distinct):
            for start in {key, key.upper()}:
                for (attempt_id,) in conn.execute(
                    "SELECT id FROM attempts WHERE message_id <> ''"
                    " AND message_id >= ? AND message_id < ?"
                    " AND (message_id NOT GLOB '*[^0-9a-z]*'"
                    " OR message_id NOT GLOB '*[^0-9A-Z]*')",
                    _prefix_range(start),
                ):
                    hits[attempt_id] = hits.get(attempt_id, 0) | (1 << bit)
        # Attempts grouped by the words their id leaves to the text index.
        groups: dict[int, list[int]] = {}
        for attempt_id, mask in hits.items():
            groups.setdefault(mask, []).append(attempt_id)
        subject_match = fts_query(subject or "", "subject")
        where = "".join(f" AND {c}" for c in clauses)
        found: list[int] = []
        for mask, ids in groups.items():
            rest = [
                w for w, k in zip(words, keys, strict=True)
                if not (k and mask >> distinct.index(k) & 1)
            ]
            needed = [q for q in [*(fts_query(w) for w in rest), subject_match] if q]
            if not needed and not clauses:
                found.extend(ids)
                continue
            # The candidates drive the join (CROSS JOIN): the planner otherwise walked the
            # text index's matches, many more on a short word.
            sql = "SELECT a.id FROM json_each(?) j CROSS JOIN attempts a ON a.id = j.value WHERE 1"
            args: list[Any] = [json.dumps(ids)]
            if needed:
                sql += (
                    " AND j.value IN (SELECT rowid FROM attempts_fts WHERE attempts_fts MATCH ?"
                    " AND rowid BETWEEN ? AND ?)"
                )
                args += [" AND ".join(needed), min(ids), max(ids)]
            found.extend(r for (r,) in conn.execute(sql + where, [*args, *params]))
        found.sort(reverse=True)
        return found

    def count(
        self,
        text: str = "",
        *,
        recipient: str | None = None,
        subject: str | None = None,
        message_id: str | None = None,
        token: str | None = None,
        tag: str | None = None,
        profile: str | None = None,
        outcome: str | Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many attempts :meth:`search` would find with no limit."""
        match, clauses, params = self._where(
            text, recipient, subject, message_id, token, tag, profile, outcome, since, until
        )
        where = "".join(f" AND {c}" for c in clauses)
        if match is not None:
            if not clauses:
                sql = "SELECT count(*) FROM attempts_fts WHERE attempts_fts MATCH ?"
            else:
                sql = (
                    "SELECT count(*) FROM attempts_fts CROSS JOIN attempts a"
                    f" ON a.id = attempts_fts.rowid WHERE attempts_fts MATCH ?{where}"
                )
            args: list[Any] = [match, *params]
        else:
            sql = f"SELECT count(*) FROM attempts a WHERE 1{where}"
            args = params
        conn = self._conn()
        total = int(conn.execute(sql, args).fetchone()[0])
        found = self._id_matches(conn, text, subject, clauses, params) if match else []
        if found:
            # Those the text index matched as well are counted already.
            total += conn.execute(
                "SELECT count(*) FROM json_each(?) WHERE value NOT IN (SELECT rowid FROM"
                " attempts_fts WHERE attempts_fts MATCH ? AND rowid BETWEEN ? AND ?)",
                (json.dumps(found), match, found[-1], found[0]),
            ).fetchone()[0]
        return total

    def resends_of(self, attempt_id: int) -> list[HistoryEntry]:
        """Attempts that resent ``attempt_id`` directly, oldest first."""
        rows = (
            self._conn()
            .execute(
                f"SELECT {_ENTRY_COLUMNS} FROM attempts WHERE resend_of = ? ORDER BY id",
                (attempt_id,),
            )
            .fetchall()
        )
        return [self._entry(row) for row in rows]

    def find_by_token(self, token: str) -> HistoryEntry | None:
        """The newest attempt carrying correlation token ``token`` exactly, if any."""
        row = (
            self._conn()
            .execute(
                f"SELECT {_ENTRY_COLUMNS_A} FROM attempt_tokens t JOIN attempts a"
                " ON a.id = t.attempt_id WHERE t.token = ? ORDER BY a.id DESC LIMIT 1",
                (token.strip(),),
            )
            .fetchone()
        )
        return None if row is None else self._entry(row)

    def find_by_message_id(self, message_id: str) -> list[HistoryEntry]:
        """Attempts Netcore answered with ``message_id`` (usually one), newest first."""
        rows = (
            self._conn()
            .execute(
                f"SELECT {_ENTRY_COLUMNS} FROM attempts WHERE message_id = ? ORDER BY id DESC",
                (message_id.strip(),),
            )
            .fetchall()
        )
        return [self._entry(row) for row in rows]


# --- delivery events and support summaries (contract §6, §8) -------------------------------

#: Correlation tokens looked up per entry (a send to many envelopes asks about the first ones).
MAX_EVENT_LOOKUPS: Final = 20


@dataclass(frozen=True)
class DeliveryEvent:
    """One delivery event of a sent message, with its name normalised (contract §8)."""

    #: The app's vocabulary: processed, delivered, opened, clicked, bounced, dropped, ...
    name: str
    #: The name as the service wrote it.
    raw_name: str
    email: str
    time: datetime | None
    message_id: str
    token: str
    response: str = ""
    bounce_type: str = ""
    bounce_reason: str = ""
    tags: str = ""

    def describe(self) -> str:
        """One line: when, what, to whom, and why for bounces."""
        when = self.time.astimezone().strftime("%Y-%m-%d %H:%M:%S") if self.time else "?"
        text = f"{when}  {self.name}  {self.email}"
        detail = " ".join(x for x in (self.bounce_type, self.bounce_reason or self.response) if x)
        return f"{text} ({detail})" if detail else text


@dataclass(frozen=True)
class EventLookup:
    """The delivery events found for one history entry, or why none could be fetched."""

    events: tuple[DeliveryEvent, ...]
    ok: bool
    #: A sentence for the person (the API's meaning when a lookup failed).
    message: str = ""

    @property
    def last(self) -> DeliveryEvent | None:
        """The newest event, if any."""
        return self.events[-1] if self.events else None


def _event_time(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        # Epoch seconds (or milliseconds from some sources).
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit():
            return _event_time(int(text))
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _event_list(body: Any) -> list[Any]:
    """The list of events in a response body, whatever its shape (contract §6: undocumented)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("data", "events", "result", "results"):
            inner = body.get(key)
            if isinstance(inner, list):
                return inner
            if isinstance(inner, dict):
                found = _event_list(inner)
                if found:
                    return found
    return []


def parse_events(body: Any) -> list[DeliveryEvent]:
    """Delivery events from an events response body, oldest first, names normalised."""
    out: list[DeliveryEvent] = []
    for item in _event_list(body):
        if not isinstance(item, dict):
            continue
        fields = {str(k).upper().replace("_", "-"): v for k, v in item.items()}

        def text(*names: str, fields: dict[str, Any] = fields) -> str:
            for name in names:
                value = fields.get(name)
                if value not in (None, ""):
                    return str(value)
            return ""

        raw = text("EVENT", "EVENT-NAME", "STATUS")
        if not raw:
            continue
        out.append(
            DeliveryEvent(
                name=normalise_event(raw),
                raw_name=raw,
                email=text("EMAIL", "RCPT", "RECIPIENT"),
                time=_event_time(fields.get("TIMESTAMP") or fields.get("TIME")),
                message_id=text("TRANSID", "MESSAGE-ID", "MESSAGEID"),
                token=text("X-APIHEADER", "XAPIHEADER"),
                response=text("RESPONSE"),
                bounce_type=text("BOUNCE-TYPE", "BOUNCETYPE"),
                bounce_reason=text("BOUNCE-REASON", "BOUNCEREASON"),
                tags=text("TAGS"),
            )
        )
    out.sort(key=lambda e: e.time or datetime.min.replace(tzinfo=UTC))
    return out


def fetch_events(client: NetcoreClient, entry: HistoryEntry) -> EventLookup:
    """The delivery events of ``entry``, asked by correlation token (``X-APIHEADER``).

    Events are asked from the day before the send up to today (the service keeps them about
    90 days, contract §5); every envelope's token is looked up, at most
    :data:`MAX_EVENT_LOOKUPS`. Never raises for an HTTP or network failure.
    """
    tokens = [t for t in entry.tokens if t][:MAX_EVENT_LOOKUPS]
    if not tokens:
        return EventLookup((), False, "This entry has no correlation token to look up.")
    start = (entry.created_at.astimezone(UTC) - timedelta(days=1)).date()
    today = datetime.now(UTC).date() + timedelta(days=1)
    end = max(today, start)
    if (today - start).days > 95:
        note = "The service keeps events for about 90 days; this message is older."
    else:
        note = ""
    events: list[DeliveryEvent] = []
    for token in tokens:
        result = client.events(xapiheader=token, startdate=start, enddate=end, limit=1000)
        if not result.ok:
            return EventLookup(tuple(events), False, result.meaning)
        events.extend(parse_events(result.response_json))
    events.sort(key=lambda e: e.time or datetime.min.replace(tzinfo=UTC))
    if not events:
        message = note or (
            "No delivery events yet (queued sends have none until the service processes them)."
        )
        return EventLookup((), True, message)
    return EventLookup(tuple(events), True, note)


def _sent_subject(entry: HistoryEntry) -> str:
    """The subject as the first recipient saw it (placeholders filled)."""
    payload = entry.payload
    subject = str(payload.get("subject", entry.subject))
    envelopes = payload.get("personalizations")
    if isinstance(envelopes, list) and envelopes and isinstance(envelopes[0], dict):
        attributes = envelopes[0].get("attributes")
        if isinstance(attributes, dict):
            subject = substitute(subject, {str(k): str(v) for k, v in attributes.items()})
    return subject


def support_summary(entry: HistoryEntry, events: EventLookup | None = None) -> str:
    """A short plain-text summary of ``entry`` to paste into a support ticket."""
    sent_at = entry.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    status = f"HTTP {entry.status_code}" if entry.status_code is not None else "no HTTP answer"
    lines = [
        f"To: {', '.join(entry.recipients) or '(none)'}",
        f"Subject: {_sent_subject(entry)}",
        f"Sent: {sent_at}",
        f"Outcome: {entry.outcome} ({status}) {entry.meaning}".rstrip(),
        f"Message id: {entry.message_id or '(none)'}",
        f"Correlation token: {', '.join(entry.tokens) or '(none)'}",
    ]
    if events is not None:
        last = events.last
        if last is not None:
            lines.append(f"Last event: {last.describe()}")
        else:
            lines.append(f"Last event: none ({events.message})" if events.message
                         else "Last event: none")
    lines.append(f"Profile: {entry.profile} ({entry.transport}, {entry.api_version})")
    if entry.resend_of is not None:
        lines.append(f"Resend of history entry #{entry.resend_of}")
    lines.append(f"History entry: #{entry.id}")
    return "\n".join(lines) + "\n"
