"""A quick run of the client benchmark: its draft, its sends and its tables are sane.

Timing is not asserted here (the machine may be busy); ``python -m
tests.benchmarks.bench_client`` measures it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netcore_desktop.core.history import Outcome

from . import bench_client
from ._table import Row, format_table


@pytest.mark.benchmark_smoke
def test_client_benchmark_sends_everything_through_the_full_path(tmp_path: Path) -> None:
    draft = bench_client.make_draft()
    bench = bench_client.Bench(tmp_path)
    try:
        # The request is the ~2 KB the issue names, with the placeholders left for Netcore.
        assert 2048 <= len(bench.body) < 3072
        assert b"[%FIRST_NAME%]" in bench.body
        assert draft.body == bench.draft.body
        rows = bench_client.measure(bench, sends=10, runs=1)
        bench_client.check(bench, sends=10, runs=1)
    finally:
        bench.close()
    assert [r.name for r in rows] == [bench_client.BASELINE, bench_client.OURS]
    assert all(len(r.values) == 1 and r.values[0] > 0 for r in rows)
    assert bench_client.ratio(rows) > 0
    assert bench.outcomes == {Outcome.SENT: 10}
    # Every stage was timed, and the stages add up to no more than the whole.
    stages = {name: values[0] for name, values in bench.stages.items()}
    assert set(stages) == set(bench_client.STAGES) and all(v > 0 for v in stages.values())
    assert sum(stages.values()) <= rows[1].values[0] * 1.05
    table = format_table("smoke", rows, "ms", baseline=bench_client.BASELINE)
    assert re.search(r"full path \(SendService\)\s+\d+\.\d", table)
    stage_table = format_table("stages", [Row(n, v) for n, v in bench.stages.items()], "ms")
    assert "history record + complete" in stage_table
