"""Hypothesis settings shared by the core's property and fuzz tests.

Three profiles are registered: ``dev`` (the default: small example counts, so the whole
``tests/core`` run stays well under a minute on a busy two-core machine), ``ci`` (five times
deeper) and ``deep`` (fifty times, for a hunt that may take ten minutes). Pick one with
``HYPOTHESIS_PROFILE=ci``. Each test asks for a fraction of the
profile's example count with :func:`core_settings`; nothing here changes Hypothesis's global
default, so other test folders keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.errors import InvalidArgument

# Rendering through the CSS inliner and validating addresses take a few milliseconds on a
# loaded machine: a deadline would only turn that into flaky failures.
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

settings.register_profile("dev", max_examples=40, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("deep", max_examples=2000, deadline=None, suppress_health_check=_SLOW_OK)


def _profile() -> settings:
    name = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    try:
        return settings.get_profile(name)
    except InvalidArgument:  # an unknown profile name: fall back rather than fail collection
        return settings.get_profile("dev")


def core_settings(fraction: float = 1.0, *, fixtures: bool = False) -> settings:
    """Settings with ``fraction`` of the profile's example count (at least 5).

    ``fixtures`` allows function-scoped pytest fixtures (such as a shared sandbox whose state
    does not matter between examples).
    """
    parent = _profile()
    suppress = list(parent.suppress_health_check)
    if fixtures:
        suppress.append(HealthCheck.function_scoped_fixture)
    return settings(
        parent=parent,
        max_examples=max(5, int(parent.max_examples * fraction)),
        suppress_health_check=suppress,
    )
