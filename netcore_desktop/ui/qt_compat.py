"""Emitting signals safely, whatever the PySide6 version.

PySide6 6.12.0's ``SignalInstance.emit()`` returns ``True`` without taking a reference to it,
so every emit from Python takes one reference away from the ``True`` object. After a few
thousand emits (a few minutes of typing) the interpreter frees ``True`` and aborts with
"Fatal Python error: bool_dealloc". 6.11 does not do this.

Every emit in the window goes through :func:`emit`, which checks once, at import, whether
this PySide6 has the fault (by measuring ``True``'s reference count around one emit) and
then gives back the missing reference after each emit. On a fixed PySide6 it is a plain call.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from typing import Any

from PySide6.QtCore import QObject, Signal, SignalInstance

log = logging.getLogger(__name__)


class _Probe(QObject):
    fired = Signal()


def _emit_drops_a_reference() -> bool:
    probe = _Probe()
    rounds = 16
    before = sys.getrefcount(True)
    for _ in range(rounds):
        probe.fired.emit()
    lost = before - sys.getrefcount(True)
    return lost >= rounds


#: Whether this PySide6 loses a reference to the result of every emit.
EMIT_DROPS_REFERENCE = _emit_drops_a_reference()
if EMIT_DROPS_REFERENCE:
    log.info("PySide6 emit() reference fault detected; compensating")
    # Give back what the probe took.
    for _ in range(16):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(True))

_incref = ctypes.pythonapi.Py_IncRef
_incref.argtypes = [ctypes.py_object]
_incref.restype = None


def emit(signal: SignalInstance, *args: Any) -> None:
    """``signal.emit(*args)``, without the reference fault of PySide6 6.12.0."""
    # The stubs say emit() returns None; at run time it returns a bool.
    result: object = signal.emit(*args)  # type: ignore[func-returns-value]
    if EMIT_DROPS_REFERENCE and result is not None:
        _incref(result)
