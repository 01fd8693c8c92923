"""What each process does in the test of several processes opening one new history.

In a module of its own, light to import: the test starts its processes from a fork server
(never by forking the test run itself), and each one imports only this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netcore_desktop.core.history import History


def open_new(path: str, start: Any, results: Any) -> None:
    """Wait for ``start``, open the history at ``path``; put "" or the error on ``results``."""
    start.wait(30)
    try:
        with History(Path(path)) as h:
            h.count()
        results.put("")
    except Exception as exc:  # reported to the parent, which fails the test with it
        results.put(f"{type(exc).__name__}: {exc}")
