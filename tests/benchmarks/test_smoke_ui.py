"""A quick run of the window benchmark: every part measures something real and sane.

Timing targets are not asserted here (the machine may be busy); ``python -m
tests.benchmarks.bench_ui`` measures them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from . import bench_ui
from ._table import format_table


@pytest.mark.benchmark_smoke
def test_cold_start_marks_the_first_paint_then_the_loaded_preview() -> None:
    rows = bench_ui.cold_start(1)
    assert [r.name for r in rows] == [bench_ui.BARE, bench_ui.OURS, bench_ui.OURS_READY]
    bare, shown, ready = (r.values[0] for r in rows)
    assert 0 < bare < 30_000 and 0 < shown <= ready < 60_000
    table = format_table("smoke", rows, "ms", baseline=bench_ui.BARE)
    assert re.search(r"netcore-desktop: first paint\s+\d+\.\d", table)


@pytest.mark.benchmark_smoke
def test_typing_and_sends_are_measured_in_a_real_window(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NETCORE_DESKTOP_HOME", str(tmp_path / "home"))  # restored after
    live = bench_ui.interactive(bursts=1, sends=3, kb=8)
    assert 7 <= live["body_kb"] < 12
    (latency,) = live["latencies"]
    assert 0 < latency < 10_000
    assert live["accepted"] == 3 and live["log_rows"] == 3
    assert live["typing_stall"] >= 0 and live["send_stall"] >= 0


@pytest.mark.benchmark_smoke
def test_idle_memory_counts_the_web_engine_helpers() -> None:
    rss, pss, processes = bench_ui.idle_memory(settle_s=0.5)
    assert processes >= 3  # the app, the preview helper, QtWebEngine's processes
    assert 50 < rss < 4096
    assert pss <= rss
