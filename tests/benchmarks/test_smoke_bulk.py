"""A quick run of the bulk benchmark: both cases send every row, the table and ratio are sane.

Timing is not asserted here (the machine may be busy); ``python -m
tests.benchmarks.bench_bulk`` measures 1,000 rows and the GUI thread.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from . import bench_bulk
from ._table import Row, format_table


@pytest.mark.benchmark_smoke
def test_bulk_benchmark_sends_every_row_both_ways(tmp_path: Path) -> None:
    bench = bench_bulk.Bench(tmp_path, concurrency=4)
    try:
        rows = bench_bulk.measure(bench, 20, runs=1)
        bench_bulk.check(bench, 20, runs=1)
        # Every job row reached the sandbox exactly once, with its own values.
        assert bench.embedded is not None
        messages = bench.embedded.messages()
        tokens = [m["request"]["personalizations"][0]["token_to"] for m in messages]
        assert len(tokens) == len(set(tokens))
        codes = {m["request"]["personalizations"][0]["attributes"]["CODE"] for m in messages}
        assert "C00019" in codes
    finally:
        bench.close()
    assert [r.name for r in rows] == [bench_bulk.BASELINE, bench_bulk.OURS, bench_bulk.BATCHED]
    assert all(len(r.values) == 1 and r.values[0] > 0 for r in rows)
    assert bench_bulk.throughput_ratio(rows) > 0
    table = format_table("smoke", [Row(r.name, [v * 1000 for v in r.values]) for r in rows],
                         "ms", baseline=bench_bulk.BASELINE)
    assert re.search(r"bulk job\s+\d+\.\d", table)


@pytest.mark.benchmark_smoke
def test_bulk_benchmark_gui_probe_runs_a_job_in_the_panel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qapp: object
) -> None:
    # The approximate preview keeps this quick; the benchmark itself uses the web view.
    monkeypatch.setenv("NETCORE_DESKTOP_PREVIEW", "basic")
    monkeypatch.setenv("NETCORE_DESKTOP_HOME", str(tmp_path / "home"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    bench = bench_bulk.Bench(tmp_path, concurrency=4)
    try:
        longest, took = bench_bulk.gui_stall(bench, 30)
        assert bench.embedded is not None
        assert len(bench.embedded.messages()) == 30
    finally:
        bench.close()
    assert longest > 0 and took > 0
