"""The history's write-ahead log is folded into the file as it goes, off the sending thread.

Checkpoints (which fsync) run in a background thread every few dozen commits instead of
inside the commit of whichever send happened to fill the log. These tests check that the
log file stays small while messages are sent with the short pauses real sending has, that
everything recorded is in the file, and that closing the history folds the log in and
leaves no thread behind; and that the log stays bounded when one pass of that thread takes
far longer than the sends (a slow disk), as it did on a busy CI machine.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from netcore_desktop.core.contract import ApiVersion
from netcore_desktop.core.history import FILE_NAME, History, Outcome
from netcore_desktop.core.message import Address, Draft, Envelope, build_payload, with_fresh_tokens

# Without the checkpoint thread the log of the sends below grows to 32 MB (SQLite's own
# checkpoint is left for a log that large).
WAL_LIMIT = 8 * 1024 * 1024


def _draft(i: int) -> Draft:
    paragraph = f"Order ORD-{i:05d} ships tomorrow. Thank you for shopping with us. " * 30
    return with_fresh_tokens(
        Draft(
            sender=Address("shop@mail.example.org", "Example Shop"),
            subject=f"Your order ORD-{i:05d}",
            body=paragraph,
            envelopes=(Envelope(to=(Address(f"customer{i}@example.net"),)),),
        )
    )


def _checkpoint_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "history-checkpoint"}


def _send(history: History, i: int) -> None:
    draft = _draft(i)
    attempt_id = history.record_attempt(
        draft=draft,
        payload=build_payload(draft, ApiVersion.V6),
        profile="Shop",
        transport="api",
        api_version="v6",
        endpoint="http://127.0.0.1:8025/v6/mail/send",
    )
    history.complete_attempt(
        attempt_id,
        outcome=Outcome.SENT,
        status_code=200,
        meaning="Sent.",
        message_id=f"{i:032x}",
    )


def test_the_log_stays_small_and_everything_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    wal = tmp_path / (FILE_NAME + "-wal")
    sends = 400
    largest = 0
    others = _checkpoint_threads()  # of histories other tests left open
    history = History(path)
    try:
        for i in range(sends):
            _send(history, i)
            largest = max(largest, wal.stat().st_size)
            if i % 16 == 15:
                time.sleep(0.02)  # a person, a network, a rate limit: sends have gaps
        assert len(_checkpoint_threads() - others) == 1
        assert history.count(outcome=Outcome.SENT) == sends
    finally:
        history.close()
    assert largest < WAL_LIMIT, f"the log grew to {largest / 1e6:.1f} MB"
    assert _checkpoint_threads() - others == set()
    assert not wal.exists()
    # Closed: the log is folded in, and another program reading the file sees every send.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM attempts WHERE outcome = 'sent'").fetchone() == (
            sends,
        )
    finally:
        conn.close()


def test_a_short_session_starts_no_thread(tmp_path: Path) -> None:
    others = _checkpoint_threads()
    with History(tmp_path / FILE_NAME) as history:
        assert history.count() == 0
        assert _checkpoint_threads() - others == set()


def test_the_log_stays_bounded_when_a_checkpoint_pass_is_slow(tmp_path: Path) -> None:
    """A slow disk: one pass of the checkpoint thread outlasts hundreds of sends.

    On a busy CI machine a pass (its fsyncs) took long enough for the log to reach 20 MB.
    Here the pass is held for a second and a half, and SQLite's own backstop is off, as it
    is in effect while the thread is mid-pass (it cannot take the checkpoint lock then).
    """
    path = tmp_path / FILE_NAME
    wal = tmp_path / (FILE_NAME + "-wal")
    history = History(path)
    slow_pass = threading.Thread(target=_hold, args=(history._checkpoint_pass, 1.5))
    largest = 0
    try:
        history.connection().execute("PRAGMA wal_autocheckpoint = 0")
        slow_pass.start()
        started = time.monotonic()
        for i in range(400):
            _send(history, i)
            largest = max(largest, wal.stat().st_size)
        took = time.monotonic() - started
        assert history.count(outcome=Outcome.SENT) == 400
    finally:
        slow_pass.join()
        history.close()
    assert largest < WAL_LIMIT, f"the log grew to {largest / 1e6:.1f} MB"
    # The sends waited for the slow pass once, then went on.
    assert took >= 1.0


def _hold(lock: threading.Lock, seconds: float) -> None:
    with lock:
        time.sleep(seconds)
