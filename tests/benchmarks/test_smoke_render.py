"""A quick run of the rendering benchmark: its message, its output and its table are sane.

Timing is not asserted here (the machine may be busy); ``python -m
tests.benchmarks.bench_render`` measures it.
"""

from __future__ import annotations

import re

import pytest

from . import bench_render
from ._table import format_table


@pytest.mark.benchmark_smoke
def test_render_benchmark_runs_and_renders_a_sane_message() -> None:
    source = bench_render.make_markdown(6 * 1024)
    assert source == bench_render.make_markdown(6 * 1024), "the message is deterministic"
    assert 6 * 1024 <= len(source.encode()) < 9 * 1024
    html = bench_render.check_output(source)
    assert "[%FIRST_NAME%]" in html and "ndph" not in html
    rows = bench_render.measure(source, runs=1, plain=True)
    plain = bench_render.PLAIN_SUFFIX
    assert [r.name for r in rows] == [
        bench_render.BASELINE,
        bench_render.OURS,
        bench_render.BASELINE + plain,
        bench_render.OURS + plain,
    ]
    assert all(len(r.values) == 1 and r.values[0] > 0 for r in rows)
    assert bench_render.ratio(rows) > 0 and bench_render.ratio(rows, plain) > 0
    table = format_table("smoke", rows, "ms", baseline=bench_render.BASELINE)
    assert re.search(r"markdown_to_html \(inlined\)\s+\d+\.\d", table)
    assert "1.00x" in table


@pytest.mark.benchmark_smoke
def test_full_size_message_is_about_50_kb() -> None:
    source = bench_render.make_markdown()
    assert 50 * 1024 <= len(source.encode()) < 56 * 1024
    assert source.count("[%") > 50 and source.count("|") > 100 and "```python" in source
