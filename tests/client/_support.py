"""Helpers shared by the client, SMTP and sending tests: drafts and the sandbox's raw store."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from netcore_desktop.core.client import RetryPolicy
from netcore_desktop.core.message import Address, Draft, Envelope, with_fresh_tokens
from netcore_desktop.sandbox import EmbeddedSandbox

#: Retries without the real waits, so a test of four tries takes milliseconds.
FAST_RETRY = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)


def make_draft(**changes: object) -> Draft:
    """A small valid draft with one envelope and a placeholder, with fresh tokens."""
    base = Draft(
        sender=Address("billing@mail.example.org", "Example Billing"),
        subject="Invoice [%INVOICE_NO%] is ready, [%FIRST_NAME%]",
        body="Hi **[%FIRST_NAME%]**,\n\nInvoice [%INVOICE_NO%] is attached. Café ☕",
        envelopes=(
            Envelope(
                to=(Address("asha@example.net", "Asha Rao"),),
                attributes={"FIRST_NAME": "Asha", "INVOICE_NO": "INV-1042"},
            ),
        ),
        tags=("invoice",),
    )
    return with_fresh_tokens(replace(base, **changes))  # type: ignore[arg-type]


def raw_body(sandbox: EmbeddedSandbox, message_id: str) -> bytes:
    """The request body exactly as the sandbox received it (after gzip), from its store."""
    assert sandbox.db_path is not None
    conn = sqlite3.connect(f"file:{sandbox.db_path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT body FROM messages WHERE message_id = ?", (message_id,)
        ).fetchone()
    finally:
        conn.close()
    assert row is not None, f"the sandbox has no message {message_id}"
    return str(row[0]).encode("utf-8")
