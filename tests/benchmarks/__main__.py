"""Run every benchmark, one after another: ``python -m tests.benchmarks [NAME ...]``.

Each benchmark prints its own table (median of several runs, ratio against a baseline
measured in the same run). Names: sandbox, render, client, history, bulk, ui. With no names,
all run. The exit code is non-zero when any benchmark missed its target or failed.
"""

from __future__ import annotations

import importlib
import sys
import time

ORDER = ("render", "sandbox", "client", "history", "bulk", "ui")


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all when none are named)."""
    names = argv or list(ORDER)
    unknown = [n for n in names if n not in ORDER]
    if unknown:
        print(f"Unknown benchmark(s): {', '.join(unknown)}. Choose from: {', '.join(ORDER)}.")
        return 2
    failed: list[str] = []
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"tests.benchmarks.bench_{name}")
            code = int(module.main([]) or 0)
        except ModuleNotFoundError as exc:
            print(f"skipped: {exc}")
            continue
        except Exception as exc:  # one broken benchmark must not hide the others' tables
            print(f"failed: {exc!r}")
            code = 1
        print(f"({name}: {time.perf_counter() - start:.0f} s)", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"\nMissed a target or failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
