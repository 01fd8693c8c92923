"""Fault injection for rehearsals and tests (``shared/netcore-api.md`` §9).

:class:`Faults` holds what the sandbox should do wrong and decides, per send call, whether
this call fails: a forced status for the next N calls first, then a random dropped
connection, then a random 500. The random draws come from one seeded generator, so a run
with a seed and the same sequence of calls fails the same calls again.

It is shared by the HTTP side (event-loop thread) and by Python callers in other threads,
so every method takes a lock.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any, Final

#: Forced statuses that are not errors: they run the normal send path with that outcome.
FORCEABLE_SUCCESS: Final = frozenset({200, 202})


class FaultError(ValueError):
    """A fault setting was refused; ``field`` names it as the HTTP error body does."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Decision:
    """What to do with one send call."""

    #: ``"ok"``, ``"status"`` (answer ``status`` with an error body, or the success path for
    #: 200/202), ``"drop"`` (close without answering) or ``"fail"`` (a random 500).
    action: str
    status: int = 0


_OK: Final = Decision("ok")


def _rate(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(field, "Must be a number between 0 and 1.")
    if not 0.0 <= float(value) <= 1.0:
        raise FaultError(field, "Must be a number between 0 and 1.")
    return float(value)


def _whole(field: str, value: object, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        suffix = " (or null for no limit)" if allow_none else ""
        raise FaultError(field, f"Must be a whole number of at least 0{suffix}.")
    return value


class Faults:
    """The current fault settings and the daily limit, changeable at any time."""

    def __init__(
        self,
        *,
        fail_rate: float = 0.0,
        latency_ms: int = 0,
        drop_rate: float = 0.0,
        daily_limit: int | None = None,
        seed: int | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._initial: dict[str, Any] = {
            "fail_rate": fail_rate,
            "latency_ms": latency_ms,
            "drop_rate": drop_rate,
            "daily_limit": daily_limit,
            "seed": seed,
        }
        self.fail_rate = 0.0
        self.latency_ms = 0
        self.drop_rate = 0.0
        self.daily_limit: int | None = None
        self.seed: int | None = None
        self.force_code = 0
        self.force_count = 0
        self._random = random.Random()
        self.reset()

    def reset(self) -> None:
        """Back to the settings the sandbox was started with (and a re-seeded generator)."""
        self.update({**self._initial, "force_status": None})

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply the given settings (the ``/sandbox/faults`` JSON); return the new state.

        Keys: ``fail_rate``, ``latency_ms``, ``drop_rate``, ``daily_limit`` (``None`` = no
        limit), ``seed`` (re-seeds the generator), ``force_status`` (``{"code", "count"}`` or
        ``None`` to clear). Raises :class:`FaultError` naming the first bad field; nothing
        is changed then.
        """
        if not isinstance(changes, dict):
            raise FaultError("body", "Must be a JSON object of fault settings.")
        known = {"fail_rate", "latency_ms", "drop_rate", "daily_limit", "seed", "force_status"}
        for key in changes:
            if key not in known:
                raise FaultError(str(key), f"'{key}' is not a fault setting.")
        new: dict[str, Any] = {}
        if "fail_rate" in changes:
            new["fail_rate"] = _rate("fail_rate", changes["fail_rate"])
        if "drop_rate" in changes:
            new["drop_rate"] = _rate("drop_rate", changes["drop_rate"])
        if "latency_ms" in changes:
            latency = _whole("latency_ms", changes["latency_ms"])
            if latency is not None and latency > 60_000:
                raise FaultError("latency_ms", "Must be at most 60000 (one minute).")
            new["latency_ms"] = latency
        if "daily_limit" in changes:
            new["daily_limit"] = _whole("daily_limit", changes["daily_limit"], allow_none=True)
        if "seed" in changes:
            seed = changes["seed"]
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise FaultError("seed", "Must be a whole number or null.")
            new["seed"] = seed
        if "force_status" in changes:
            new["force_status"] = self._force(changes["force_status"])
        with self._lock:
            if "force_status" in new:
                self.force_code, self.force_count = new.pop("force_status")
            if "seed" in new:
                self.seed = new["seed"]
                self._random = random.Random(self.seed)
            for key, value in new.items():
                setattr(self, key, value)
            return self._snapshot()

    @staticmethod
    def _force(value: object) -> tuple[int, int]:
        if value is None:
            return 0, 0
        if not isinstance(value, dict):
            raise FaultError("force_status", 'Must be {"code": 500, "count": 2} or null.')
        code = value.get("code")
        count = value.get("count", 1)
        if (
            isinstance(code, bool)
            or not isinstance(code, int)
            or not (code in FORCEABLE_SUCCESS or 400 <= code <= 599)
        ):
            raise FaultError("force_status.code", "Must be 200, 202 or a status from 400 to 599.")
        checked = _whole("force_status.count", count)
        assert checked is not None
        return code, checked

    def _snapshot(self) -> dict[str, Any]:
        force = (
            {"code": self.force_code, "count": self.force_count} if self.force_count else None
        )
        return {
            "fail_rate": self.fail_rate,
            "latency_ms": self.latency_ms,
            "drop_rate": self.drop_rate,
            "daily_limit": self.daily_limit,
            "seed": self.seed,
            "force_status": force,
        }

    def snapshot(self) -> dict[str, Any]:
        """The current settings, in the ``/sandbox/faults`` JSON shape."""
        with self._lock:
            return self._snapshot()

    def decide(self) -> Decision:
        """What the next send call should do; counts down a forced status."""
        with self._lock:
            if self.force_count > 0:
                self.force_count -= 1
                return Decision("status", self.force_code)
            if self.drop_rate and self._random.random() < self.drop_rate:
                return Decision("drop")
            if self.fail_rate and self._random.random() < self.fail_rate:
                return Decision("fail", 500)
            return _OK

    def smtp_drops(self) -> bool:
        """Whether the next SMTP connection is closed before the greeting (drop_rate)."""
        with self._lock:
            return bool(self.drop_rate) and self._random.random() < self.drop_rate

    def smtp_fails(self) -> bool:
        """Whether the next SMTP message is refused with a temporary failure (fail_rate)."""
        with self._lock:
            return bool(self.fail_rate) and self._random.random() < self.fail_rate
