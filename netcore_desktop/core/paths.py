"""Where Netcore Desktop keeps its files.

The locations come from :mod:`platformdirs` under the application name ``netcore-desktop``
(for example ``~/.config/netcore-desktop`` and ``~/.local/share/netcore-desktop`` on Linux).
Setting the environment variable ``NETCORE_DESKTOP_HOME`` to a directory puts everything
under that one root instead (``config/``, ``data/``, ``cache/``, ``log/``), which is what the
tests and the command line's ``--home`` use. Every function creates its directory on demand,
readable by the owner only, because history holds the content of sent mail.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

import platformdirs

log = logging.getLogger(__name__)

#: The application name used for the platform directories.
APP_NAME: Final = "netcore-desktop"

#: Environment variable naming one root directory for all of the app's files.
HOME_ENV: Final = "NETCORE_DESKTOP_HOME"


def _ensure(path: Path) -> Path:
    # Owner-only: the history holds the content of every message sent, and profiles hold
    # addresses; other local users have no business reading them.
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _root_subdir(name: str) -> Path | None:
    root = os.environ.get(HOME_ENV, "").strip()
    if not root:
        return None
    return Path(root).expanduser().resolve() / name


def config_dir() -> Path:
    """The directory for settings and profiles (created if missing)."""
    path = _root_subdir("config") or Path(
        platformdirs.user_config_dir(APP_NAME, appauthor=False, roaming=True)
    )
    return _ensure(path)


def data_dir() -> Path:
    """The directory for the history database and other lasting data (created if missing)."""
    path = _root_subdir("data") or Path(
        platformdirs.user_data_dir(APP_NAME, appauthor=False, roaming=False)
    )
    return _ensure(path)


def cache_dir() -> Path:
    """The directory for files that can be rebuilt at any time (created if missing)."""
    path = _root_subdir("cache") or Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    return _ensure(path)


def log_dir() -> Path:
    """The directory for log files (created if missing)."""
    path = _root_subdir("log") or Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    return _ensure(path)


def all_dirs() -> dict[str, Path]:
    """Every directory the app writes to, by role (for the README, ``--help`` and tests)."""
    return {
        "config": config_dir(),
        "data": data_dir(),
        "cache": cache_dir(),
        "log": log_dir(),
    }
