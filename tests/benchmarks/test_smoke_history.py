"""A quick run of the history search benchmark on 2,000 entries: its data, searches and table.

Timing is not asserted here (the machine may be busy); ``python -m
tests.benchmarks.bench_history`` measures it over 100,000 entries.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netcore_desktop.core.history import FILE_NAME, Outcome

from . import bench_history
from ._table import format_table


@pytest.mark.benchmark_smoke
def test_generated_history_is_deterministic_and_realistic() -> None:
    first = [
        (p.subject, p.recipients, p.tokens, c, d["outcome"])
        for p, c, d in bench_history.generate(300)
    ]
    again = [
        (p.subject, p.recipients, p.tokens, c, d["outcome"])
        for p, c, d in bench_history.generate(300)
    ]
    assert first == again
    assert len({s for s, *_ in first}) >= 6  # several kinds of message
    assert all(t[0][0].startswith("nd-") for _, _, t, _, _ in first)  # one token each
    dates = [c for *_, c, _ in first]
    assert dates == sorted(dates)  # oldest first, like a real history
    outcomes = {o for *_, o in first}
    assert Outcome.SENT in outcomes and len(outcomes) >= 3


@pytest.mark.benchmark_smoke
def test_search_benchmark_runs_on_2000_entries(tmp_path: Path) -> None:
    history, seconds = bench_history.fill(tmp_path / FILE_NAME, 2000)
    try:
        assert seconds > 0 and history.count() == 2000
        # What the benchmark types finds what a person would expect.
        for entry in history.search("asha rao", limit=50):
            haystack = " ".join(entry.recipients).lower() + entry.draft_json.lower()
            assert "asha" in haystack and "rao" in haystack
        assert history.search("xylophone") == []
        sent = history.search(outcome="sent", limit=1)[0]
        assert [e.id for e in history.search(sent.message_id[:10])] == [sent.id]

        rows, per_query, found = bench_history.measure(
            history, queries=("asha rao", "invoice", "xylophone"), runs=1
        )
        assert [r.name for r in rows] == [bench_history.BASELINE, bench_history.OURS]
        keys = len("asha rao") + len("invoice") + len("xylophone")
        assert all(len(r.values) == keys and min(r.values) >= 0 for r in rows)
        assert [len(v) for v in per_query.values()] == [8, 7, 9]
        assert found["asha rao"] > 0 and found["invoice"] > 0 and found["xylophone"] == 0
        table = format_table("smoke", rows, "ms", baseline=bench_history.BASELINE)
        assert re.search(r"History\.search \(FTS5\)\s+\d+\.\d", table) and "1.00x" in table
        filters = bench_history.measure_filters(history, runs=1)
        assert len(filters) == 6 and all(len(r.values) == 1 for r in filters)
    finally:
        history.close()


def test_keystrokes() -> None:
    assert bench_history.keystrokes("asha") == ["a", "as", "ash", "asha"]
