"""The response log keeps the newest rows first and its memory bounded."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from netcore_desktop.core.client import RequestRecord
from netcore_desktop.ui.log_model import COLUMNS, LogFilterModel, ResponseLogModel
from netcore_desktop.ui.send_worker import LogEntry


def _entry(i: int, body: bytes = b"{}") -> LogEntry:
    return LogEntry(
        time=datetime(2026, 1, 1, 12, 0) + timedelta(seconds=i),
        profile="Main",
        endpoint="https://emailapi.netcorecloud.net/v6/mail/send",
        status_code=200,
        outcome="sent",
        meaning="Sent: Netcore accepted the message.",
        message_id=f"{i:032x}",
        latency_ms=12.0,
        recipients=(f"user{i}@example.net",),
        tokens=(f"nd-{i:032x}",),
        request=RequestRecord("POST", "https://x/v6/mail/send", (), body),
    )


def test_newest_first_and_at_most_max_rows(qtbot: Any) -> None:
    model = ResponseLogModel(max_rows=100)
    for i in range(250):
        model.add(_entry(i))
    assert model.rowCount() == 100
    assert model.entry(0).message_id == f"{249:032x}"
    assert model.entry(99).message_id == f"{150:032x}"
    status = model.index(0, COLUMNS.index("status")).data()
    assert status == "200"
    assert model.index(0, COLUMNS.index("latency")).data() == "12 ms"


def test_old_request_bodies_are_dropped_past_the_memory_budget(qtbot: Any) -> None:
    model = ResponseLogModel(max_rows=1000, max_body_bytes=10_000)
    for i in range(30):
        model.add(_entry(i, body=b"x" * 1000))
    kept = [len(model.entry(r).request.body_bytes) for r in range(model.rowCount())]
    assert model.rowCount() == 30
    assert sum(kept) <= 10_000
    assert kept[0] == 1000  # the newest keep theirs
    assert kept[-1] == 0


def test_filter_matches_tokens_and_recipients(qtbot: Any) -> None:
    model = ResponseLogModel()
    for i in range(5):
        model.add(_entry(i))
    proxy = LogFilterModel()
    proxy.setSourceModel(model)
    proxy.set_text(f"nd-{3:032x}")
    assert proxy.rowCount() == 1
    proxy.set_text("USER4@")
    assert proxy.rowCount() == 1
    proxy.set_text("")
    assert proxy.rowCount() == 5
