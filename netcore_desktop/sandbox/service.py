"""What the sandbox does, shared by its HTTP side and its SMTP relay.

:class:`SandboxService` records accepted messages (API and SMTP), applies the daily limit,
decides each recipient's fate at send time (sent, dropped when suppressed, bounced at
``bounce.invalid``), keeps templates and suppressions, and synthesises delivery events and
statistics from the store (``shared/netcore-api.md`` §6, §8, §9).

Its ``async`` methods run on the sandbox's event-loop thread, which is also the only thread
that changes its in-memory state (suppression sets, template ids, the day's count), so that
state needs no lock. Its plain methods only read the store and may be called from any
thread.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from typing import Any, Final

from netcore_desktop.core.contract import normalise_event
from netcore_desktop.sandbox.faults import Faults
from netcore_desktop.sandbox.store import MessageRecord, Recipient, Store, insert_message

#: Recipients at this domain (or below it) bounce (contract §9).
BOUNCE_DOMAIN: Final = "bounce.invalid"

#: The answer an accepted recipient gets in its ``sent`` event.
SENT_RESPONSE: Final = "250 2.0.0 OK: accepted for delivery (sandbox)"
DROPPED_RESPONSE: Final = "Dropped: the address is on the suppression list."
BOUNCE_TYPE: Final = "HARDBOUNCE"


def bounce_reason(email: str) -> str:
    """The SMTP answer a ``bounce.invalid`` address bounces with."""
    return f"550 5.1.1 <{email}>: Recipient address rejected: User unknown (sandbox bounce)"


def new_message_id() -> str:
    """A fresh 32-hex message id, as Netcore returns (contract §4)."""
    return uuid.uuid4().hex


def iso_time(ts: float) -> str:
    """Unix seconds as ISO 8601 UTC with microseconds, e.g. ``2025-01-31T09:30:00.123456Z``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


@dataclass(frozen=True)
class EventQuery:
    """The filters of ``GET /v5.1/events`` (contract §6)."""

    start: date | None = None
    end: date | None = None
    #: Normalised event names (:func:`normalise_event`); ``None`` = every event.
    names: frozenset[str] | None = None
    email: str | None = None
    xapiheader: str | None = None
    limit: int = 100
    offset: int = 0
    descending: bool = False


class SandboxService:
    """The sandbox's behaviour over one :class:`Store` and one :class:`Faults`."""

    def __init__(self, store: Store, faults: Faults) -> None:
        self.store = store
        self.faults = faults
        #: Answers per HTTP status (and ``smtp_*`` outcomes), for ``/sandbox/stats``.
        self.counters: Counter[str] = Counter()
        self.suppressed_emails: set[str] = set()
        self.suppressed_domains: set[str] = set()
        self.template_ids: set[int] = set()
        self._day = ""
        self._day_count = 0
        self._load()

    def _load(self) -> None:
        def load(conn: sqlite3.Connection) -> tuple[list[Any], list[Any], int]:
            sup = conn.execute("SELECT kind, value FROM suppressions").fetchall()
            ids = conn.execute("SELECT id FROM templates").fetchall()
            today = _day_start(datetime.now(UTC).date())
            count = conn.execute(
                "SELECT COUNT(*) FROM messages WHERE status = 'sent' AND received_at >= ?",
                (today,),
            ).fetchone()[0]
            return sup, ids, int(count)

        sup, ids, count = self.store.read(load)
        for row in sup:
            (self.suppressed_emails if row["kind"] == "email" else self.suppressed_domains).add(
                str(row["value"]).lower()
            )
        self.template_ids = {int(r["id"]) for r in ids}
        self._day = _utc_day(time.time())
        self._day_count = count

    @property
    def day_count(self) -> int:
        """Sends accepted so far today (UTC), the number the daily limit is checked against."""
        return self._day_count

    # -- sending ---------------------------------------------------------------------------

    def admit(self, *, force: str | None = None) -> bool:
        """Whether a send is accepted now (``True``) or queued by the daily limit.

        ``force`` is ``"sent"`` or ``"queued"`` when a forced status decides instead. Must run
        on the loop thread, with no ``await`` between this and recording the send.
        """
        today = _utc_day(time.time())
        if today != self._day:
            self._day, self._day_count = today, 0
        if force == "queued":
            return False
        limit = self.faults.daily_limit
        if force is None and limit is not None and self._day_count >= limit:
            return False
        self._day_count += 1
        return True

    def outcome(self, email: str, queued: bool) -> str:
        """What happens to ``email``: ``queued``, ``dropped``, ``bounced`` or ``sent``."""
        if queued:
            return "queued"
        lower = email.lower()
        domain = lower.rpartition("@")[2]
        if lower in self.suppressed_emails or domain in self.suppressed_domains:
            return "dropped"
        if domain == BOUNCE_DOMAIN or domain.endswith("." + BOUNCE_DOMAIN):
            return "bounced"
        return "sent"

    async def record_api(
        self,
        *,
        api_version: str,
        body: str,
        payload: dict[str, Any],
        headers: dict[str, str],
        accepted: bool,
    ) -> MessageRecord:
        """Store a valid send-mail request; return once it is committed."""
        queued = not accepted
        tokens: list[tuple[str, str]] = []
        recipients: list[Recipient] = []
        global_bcc = payload.get("bcc") or []
        for env in payload["personalizations"]:
            token_to = env.get("token_to", "")
            for key in ("token_to", "token_cc", "token_bcc"):
                if key in env:
                    tokens.append((key, env[key]))
            for kind in ("to", "cc", "bcc"):
                token = env.get(f"token_{kind}") or token_to
                for addr in env.get(kind) or ():
                    email = addr["email"]
                    recipients.append(Recipient(email, kind, token, self.outcome(email, queued)))
            bcc_token = env.get("token_bcc") or token_to
            for addr in global_bcc:
                email = addr["email"]
                recipients.append(Recipient(email, "bcc", bcc_token, self.outcome(email, queued)))
        tags = payload.get("tags") or []
        rec = MessageRecord(
            message_id=new_message_id(),
            transport="api",
            api_version=api_version,
            status_code=200 if accepted else 202,
            status="sent" if accepted else "queued",
            received_at=time.time(),
            body=body,
            from_email=payload["from"]["email"],
            subject=payload.get("subject", ""),
            tags=list(tags),
            headers=headers,
            tokens=tokens,
            recipients=recipients,
        )
        await self.store.write(insert_message(rec))
        return rec

    async def record_smtp(
        self, mail_from: str, rcpt_tos: list[str], raw: bytes, *, tls: str | None = None
    ) -> MessageRecord:
        """Store a message received over SMTP; return once it is committed.

        ``tls`` is the TLS version the message came over (e.g. ``"TLSv1.3"``), ``None``
        when the connection was not encrypted.
        """
        msg = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)

        def header(name: str) -> str:
            # policy.default decodes RFC 2047 words (=?utf-8?...?=); a header too broken to
            # decode is kept as it came.
            try:
                value = msg.get(name)
            except Exception:
                value = _raw_header(raw, name)
            return "" if value is None else " ".join(str(value).split())

        to_header = [a for _, a in getaddresses([header("To")]) if a]
        cc_header = [a for _, a in getaddresses([header("Cc")]) if a]
        to_lower = {a.lower() for a in to_header}
        cc_lower = {a.lower() for a in cc_header}
        apiheader = header("X-APIHEADER")
        tags = [t.strip() for t in header("X-TAGS").split(",") if t.strip()]
        accepted = self.admit()
        recipients = []
        for rcpt in rcpt_tos:
            kind = "to" if rcpt.lower() in to_lower else "cc" if rcpt.lower() in cc_lower else "bcc"
            recipients.append(Recipient(rcpt, kind, apiheader, self.outcome(rcpt, not accepted)))
        from_email = parseaddr(header("From"))[1] or mail_from
        meta = {
            "mail_from": mail_from,
            "rcpt_to": list(rcpt_tos),
            "from": header("From"),
            "to": to_header,
            "cc": cc_header,
            "subject": header("Subject"),
            "x_apiheader": apiheader,
            "tags": tags,
            "tls": tls,
        }
        headers = {k.lower(): header(k) for k in dict.fromkeys(msg.keys())}
        rec = MessageRecord(
            message_id=new_message_id(),
            transport="smtp",
            api_version="smtp",
            status_code=250,
            status="sent" if accepted else "queued",
            received_at=time.time(),
            body=raw.decode("utf-8", errors="replace"),
            from_email=from_email,
            subject=header("Subject"),
            tags=tags,
            headers=headers,
            meta=meta,
            tokens=[("X-APIHEADER", apiheader)] if apiheader else [],
            recipients=recipients,
        )
        await self.store.write(insert_message(rec))
        return rec

    # -- reading messages ------------------------------------------------------------------

    def messages(
        self, token: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Stored messages, newest first; only those carrying ``token`` when given."""
        sql = "SELECT * FROM messages"
        params: list[Any] = []
        if token is not None:
            sql += " WHERE message_id IN (SELECT message_id FROM tokens WHERE token = ?)"
            params.append(token)
        sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        params += [-1 if limit is None else limit, offset]
        rows = self.store.read(lambda c: c.execute(sql, params).fetchall())
        return [message_json(r) for r in rows]

    def message(self, message_id: str) -> dict[str, Any] | None:
        """One stored message, or ``None``."""
        row = self.store.read(
            lambda c: c.execute(
                "SELECT * FROM messages WHERE message_id = ?", (message_id,)
            ).fetchone()
        )
        return None if row is None else message_json(row)

    def message_count(self) -> int:
        """How many messages are stored."""
        row = self.store.read(lambda c: c.execute("SELECT COUNT(*) FROM messages").fetchone())
        return int(row[0])

    async def clear_messages(self) -> int:
        """Delete every stored message (and restart the day's count); return how many."""

        def clear(conn: sqlite3.Connection) -> int:
            n = conn.execute("DELETE FROM messages").rowcount
            conn.execute("DELETE FROM tokens")
            conn.execute("DELETE FROM recipients")
            return int(n)

        deleted = await self.store.write(clear)
        self._day_count = 0
        return deleted

    async def reset(self) -> None:
        """Forget everything: messages, templates, suppressions, counters and faults."""

        def wipe(conn: sqlite3.Connection) -> None:
            for table in ("messages", "tokens", "recipients", "templates", "suppressions"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("DELETE FROM sqlite_sequence WHERE name = 'templates'")

        await self.store.write(wipe)
        self.suppressed_emails.clear()
        self.suppressed_domains.clear()
        self.template_ids.clear()
        self._day_count = 0
        self.counters.clear()
        self.faults.reset()

    # -- templates -------------------------------------------------------------------------

    def templates(self, page: int, per_page: int) -> tuple[list[dict[str, Any]], int]:
        """One page of templates (without their HTML) and the total count."""

        def query(conn: sqlite3.Connection) -> tuple[list[Any], int]:
            total = conn.execute("SELECT COUNT(*) FROM templates").fetchone()[0]
            rows = conn.execute(
                "SELECT * FROM templates ORDER BY id LIMIT ? OFFSET ?",
                (per_page, (page - 1) * per_page),
            ).fetchall()
            return rows, int(total)

        rows, total = self.store.read(query)
        return [template_json(r, with_html=False) for r in rows], total

    def template(self, template_id: int) -> dict[str, Any] | None:
        """One template with its HTML, or ``None``."""
        row = self.store.read(
            lambda c: c.execute("SELECT * FROM templates WHERE id = ?", (template_id,)).fetchone()
        )
        return None if row is None else template_json(row, with_html=True)

    async def create_template(self, name: str, subject: str, html: str) -> dict[str, Any]:
        """Store a new template; return it."""
        now = time.time()

        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO templates (name, subject, html, created_at, updated_at)"
                " VALUES (?,?,?,?,?)",
                (name, subject, html, now, now),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        template_id = await self.store.write(insert)
        self.template_ids.add(template_id)
        found = self.template(template_id)
        assert found is not None
        return found

    async def update_template(
        self, template_id: int, changes: dict[str, str]
    ) -> dict[str, Any] | None:
        """Change some of ``name``/``subject``/``html``; ``None`` when there is no such id."""
        now = time.time()
        columns = [k for k in ("name", "subject", "html") if k in changes]

        def update(conn: sqlite3.Connection) -> int:
            sets = ", ".join([f"{k} = ?" for k in columns] + ["updated_at = ?"])
            cur = conn.execute(
                f"UPDATE templates SET {sets} WHERE id = ?",
                [changes[k] for k in columns] + [now, template_id],
            )
            return int(cur.rowcount)

        if not await self.store.write(update):
            return None
        return self.template(template_id)

    # -- suppressions ----------------------------------------------------------------------

    def suppressions(self, kind: str) -> list[dict[str, str]]:
        """Every suppressed ``email`` or ``domain``, oldest first."""
        rows = self.store.read(
            lambda c: c.execute(
                "SELECT value, created_at FROM suppressions WHERE kind = ? ORDER BY rowid",
                (kind,),
            ).fetchall()
        )
        return [{kind: str(r["value"]), "created_at": iso_time(r["created_at"])} for r in rows]

    async def suppress(self, kind: str, values: Iterable[str]) -> list[str]:
        """Add addresses or domains to the suppression list; return the new ones."""
        wanted = list(dict.fromkeys(v.lower() for v in values))
        now = time.time()

        def add(conn: sqlite3.Connection) -> list[str]:
            added = []
            for value in wanted:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO suppressions (kind, value, created_at) VALUES (?,?,?)",
                    (kind, value, now),
                )
                if cur.rowcount:
                    added.append(value)
            return added

        added = await self.store.write(add)
        target = self.suppressed_emails if kind == "email" else self.suppressed_domains
        target.update(wanted)
        return added

    async def unsuppress(self, kind: str, values: Iterable[str]) -> list[str]:
        """Remove addresses or domains from the suppression list; return those removed."""
        wanted = list(dict.fromkeys(v.lower() for v in values))

        def remove(conn: sqlite3.Connection) -> list[str]:
            removed = []
            for value in wanted:
                cur = conn.execute(
                    "DELETE FROM suppressions WHERE kind = ? AND value = ?", (kind, value)
                )
                if cur.rowcount:
                    removed.append(value)
            return removed

        removed = await self.store.write(remove)
        target = self.suppressed_emails if kind == "email" else self.suppressed_domains
        target.difference_update(wanted)
        return removed

    # -- events and statistics -------------------------------------------------------------

    def events(self, query: EventQuery) -> tuple[list[dict[str, Any]], int]:
        """Delivery events matching ``query`` (one page) and how many match in all.

        Per recipient: ``processed``, then ``sent``, ``dropped`` or ``bounced`` (contract §9).
        Queued sends have no events yet: the service has not processed them.
        """
        sql = (
            "SELECT r.message_id, r.email, r.token, r.outcome, m.received_at, m.from_email,"
            " m.tags FROM recipients r JOIN messages m ON m.message_id = r.message_id"
            " WHERE r.outcome != 'queued'"
        )
        params: list[Any] = []
        if query.start is not None:
            sql += " AND m.received_at >= ?"
            params.append(_day_start(query.start))
        if query.end is not None:
            sql += " AND m.received_at < ?"
            params.append(_day_start(query.end + timedelta(days=1)))
        if query.email is not None:
            sql += " AND r.email = ?"
            params.append(query.email)
        if query.xapiheader is not None:
            sql += " AND r.token = ?"
            params.append(query.xapiheader)
        sql += " ORDER BY m.id, r.seq"
        rows = self.store.read(lambda c: c.execute(sql, params).fetchall())
        out: list[dict[str, Any]] = []
        for r in rows:
            tags = ",".join(json.loads(r["tags"]))
            base = {
                "TRANSID": r["message_id"],
                "EMAIL": r["email"],
                "TIMESTAMP": int(r["received_at"]),
                "X-APIHEADER": r["token"],
                "FROMADDRESS": r["from_email"],
                "TAGS": tags,
            }
            for event in _events_for(r["outcome"], r["email"]):
                if query.names is None or normalise_event(event["EVENT"]) in query.names:
                    out.append({**base, **event})
        if query.descending:
            out.reverse()
        return out[query.offset : query.offset + query.limit], len(out)

    def stats(self, start: date | None, end: date | None, by: str) -> list[dict[str, Any]]:
        """Counts per ``day``, ``month`` or over ``all`` time (``GET /v5.1/stats``)."""
        fmt = {"day": "%Y-%m-%d", "month": "%Y-%m", "all": "all"}[by]
        key = "'all'" if by == "all" else f"strftime('{fmt}', m.received_at, 'unixepoch')"
        sql = (
            f"SELECT {key} AS period, COUNT(DISTINCT m.message_id) AS requests,"
            " COUNT(r.email) AS recipients,"
            " SUM(r.outcome != 'queued') AS processed,"
            " SUM(r.outcome = 'sent') AS sent,"
            " SUM(r.outcome = 'dropped') AS dropped,"
            " SUM(r.outcome = 'bounced') AS bounced,"
            " SUM(r.outcome = 'queued') AS queued"
            " FROM messages m LEFT JOIN recipients r ON r.message_id = m.message_id WHERE 1"
        )
        params: list[Any] = []
        if start is not None:
            sql += " AND m.received_at >= ?"
            params.append(_day_start(start))
        if end is not None:
            sql += " AND m.received_at < ?"
            params.append(_day_start(end + timedelta(days=1)))
        sql += " GROUP BY period ORDER BY period"
        rows = self.store.read(lambda c: c.execute(sql, params).fetchall())
        fields = ("requests", "recipients", "processed", "sent", "dropped", "bounced", "queued")
        label = "period" if by == "all" else by
        return [{label: r["period"], **{f: int(r[f] or 0) for f in fields}} for r in rows]


def _raw_header(raw: bytes, name: str) -> str | None:
    """The first ``name:`` header of ``raw`` as undecoded text (for broken headers)."""
    parsed = BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=True)
    value = parsed.get(name)
    return None if value is None else str(value)


def _events_for(outcome: str, email: str) -> list[dict[str, str]]:
    processed = {"EVENT": "processed", "RESPONSE": ""}
    if outcome == "dropped":
        return [processed, {"EVENT": "dropped", "RESPONSE": DROPPED_RESPONSE}]
    if outcome == "bounced":
        reason = bounce_reason(email)
        return [
            processed,
            {
                "EVENT": "bounced",
                "RESPONSE": reason,
                "BOUNCE_TYPE": BOUNCE_TYPE,
                "BOUNCE_REASON": reason,
            },
        ]
    return [processed, {"EVENT": "sent", "RESPONSE": SENT_RESPONSE}]


def message_json(row: sqlite3.Row) -> dict[str, Any]:
    """A stored message as ``/sandbox/messages`` shows it."""
    if row["transport"] == "smtp":
        request: Any = {**json.loads(row["meta"] or "{}"), "raw": row["body"]}
    else:
        request = json.loads(row["body"])
    return {
        "message_id": row["message_id"],
        "api_version": row["api_version"],
        "status_code": row["status_code"],
        "status": row["status"],
        "transport": row["transport"],
        "received_at": iso_time(row["received_at"]),
        "request": request,
        "headers": json.loads(row["headers"]),
        "tokens": json.loads(row["tokens"]),
    }


def template_json(row: sqlite3.Row, *, with_html: bool) -> dict[str, Any]:
    """A stored template as the template endpoints show it."""
    out: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "subject": row["subject"],
        "created_at": iso_time(row["created_at"]),
        "updated_at": iso_time(row["updated_at"]),
    }
    if with_html:
        out["html"] = row["html"]
    return out
