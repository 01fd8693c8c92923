"""A quick run of the sandbox benchmark: it runs end to end and every send is recorded.

Throughput is not asserted here (the machine may be busy); ``python -m
tests.benchmarks.bench_sandbox`` measures it.
"""

from __future__ import annotations

import json

import pytest

from . import bench_sandbox
from ._table import Row, format_table


def test_benchmark_bodies_are_valid_2_kb_requests() -> None:
    from netcore_desktop.core.validation import validate_payload

    body = bench_sandbox.make_body("nd-x")
    assert len(body) == bench_sandbox.BODY_BYTES
    assert validate_payload(json.loads(body)) == []


@pytest.mark.benchmark_smoke
def test_sandbox_benchmark_runs_and_records_every_send() -> None:
    result = bench_sandbox.run_benchmark(threads=2, per_thread=10, runs=1)
    assert result.failures == []
    assert result.exit_code == 0
    # Warm-up (2 x 10) plus one run (2 x 10): every accepted id is in the store.
    assert len(result.sent_ids) == 40
    assert result.all_recorded
    assert len(result.sandbox) == 1 and result.sandbox[0] > 0
    assert len(result.baseline) == 1 and result.baseline[0] > 0
    table = format_table(
        "smoke", [Row("base", result.baseline), Row("sandbox", result.sandbox)], "sends/s",
        baseline="base",
    )
    assert "1.00x" in table
