"""A guard against PySide6 6.12.0's reference-counting faults, and the window's ``emit``.

Measured with PySide6 6.12.0 on CPython 3.11: every call from Python to a Qt method that
returns nothing (``setText``, ``show``, ``processEvents``, …) takes one reference away from
``None``, and every ``Signal.emit()`` takes one away from ``True``. Neither is ever given
back, so after enough calls (minutes of typing) the interpreter frees ``None`` or ``True``
and aborts with "Fatal Python error: none_dealloc" (or ``bool_dealloc``). PySide6 6.11 does
not do this.

CPython 3.12 and later make these singletons immortal by design; :func:`guard_singletons`
gives them the same protection on 3.11 by adding a very large number to their reference
counts once, so a lost reference can never bring them to zero. Nothing else changes: they
are never freed in a correct program anyway. :mod:`netcore_desktop.ui` calls it on import.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

#: Added to the reference counts of None, True and False (far beyond any loss).
_MARGIN = 1 << 48

_guarded = False


def guard_singletons() -> bool:
    """Make ``None``, ``True`` and ``False`` impossible to free (CPython < 3.12 only).

    Returns whether the guard was applied (now or before). Safe to call repeatedly.
    """
    global _guarded
    if _guarded:
        return True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False  # already immortal there
    for singleton in (None, True, False):
        count = ctypes.c_ssize_t.from_address(id(singleton))
        count.value += _MARGIN
    _guarded = True
    return True


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``; the reference ``emit()`` loses is covered by the guard."""
    guard_singletons()
    signal.emit(*args)
