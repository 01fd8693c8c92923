"""Printing benchmark results as one small table: median of the runs and a ratio.

Every benchmark reports the same way: each measured thing has a list of per-run values,
the table shows their median, spread and the ratio of each median to the baseline's.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One measured thing: its name and the value of each run."""

    name: str
    values: Sequence[float]

    @property
    def median(self) -> float:
        """The median of the runs."""
        return statistics.median(self.values)


def format_table(
    title: str, rows: Sequence[Row], unit: str, baseline: str | None = None
) -> str:
    """The table as text; ``baseline`` names the row the ratios are relative to."""
    base = next((r for r in rows if r.name == baseline), None)
    name_w = max([len("case")] + [len(r.name) for r in rows])
    header = f"{'case':<{name_w}}  {'median ' + unit:>16}  {'min':>10}  {'max':>10}  runs"
    if base is not None:
        header += f"  {'ratio':>7}"
    lines = [title, header, "-" * len(header)]
    for r in rows:
        line = (
            f"{r.name:<{name_w}}  {r.median:>16.1f}  {min(r.values):>10.1f}"
            f"  {max(r.values):>10.1f}  {len(r.values):>4}"
        )
        if base is not None:
            ratio = r.median / base.median if base.median else float("nan")
            line += f"  {ratio:>6.2f}x"
        lines.append(line)
    return "\n".join(lines)


def print_table(
    title: str, rows: Sequence[Row], unit: str, baseline: str | None = None
) -> None:
    """Print :func:`format_table`."""
    print(format_table(title, rows, unit, baseline), flush=True)
