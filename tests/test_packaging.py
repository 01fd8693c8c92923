"""The Linux desktop entry and AppStream metadata pass their official validators."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

LINUX = Path(__file__).resolve().parent.parent / "packaging" / "linux"


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils")
def test_desktop_entry_is_valid() -> None:
    entry = next(LINUX.glob("*.desktop"))
    result = subprocess.run(
        ["desktop-file-validate", str(entry)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stdout.lower()


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream")
def test_metainfo_is_valid() -> None:
    meta = next(LINUX.glob("*.metainfo.xml"))
    result = subprocess.run(
        ["appstreamcli", "validate", "--no-net", str(meta)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_desktop_entry_runs_the_installed_command() -> None:
    entry = next(LINUX.glob("*.desktop")).read_text(encoding="utf-8")
    pyproject = (LINUX.parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert "Exec=netcore-desktop" in entry
    assert 'netcore-desktop = "netcore_desktop.__main__:main"' in pyproject
