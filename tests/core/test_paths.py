"""Where the app keeps its files: platform directories, or one root from NETCORE_DESKTOP_HOME."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from netcore_desktop.core import paths


def test_home_env_puts_every_directory_under_one_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "nd-home"
    monkeypatch.setenv(paths.HOME_ENV, str(root))
    dirs = paths.all_dirs()
    assert dirs == {
        "config": root / "config",
        "data": root / "data",
        "cache": root / "cache",
        "log": root / "log",
    }
    for path in dirs.values():
        assert path.is_dir()
        # History and profiles are private to the person: no group/other access.
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_platform_directories_follow_xdg_when_no_home_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(paths.HOME_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xc"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xd"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xk"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xs"))
    if not paths.config_dir().is_relative_to(tmp_path):
        pytest.skip("this platform does not use XDG directories")
    assert paths.config_dir() == tmp_path / "xc" / "netcore-desktop"
    assert paths.data_dir() == tmp_path / "xd" / "netcore-desktop"
    assert paths.cache_dir() == tmp_path / "xk" / "netcore-desktop"
    assert paths.log_dir().is_relative_to(tmp_path)
    assert all(p.is_dir() for p in paths.all_dirs().values())


def test_blank_home_env_means_platform_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.HOME_ENV, "  ")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xc"))
    assert paths.config_dir().name == "netcore-desktop"
    assert not (Path.cwd() / "config").exists()
