"""The PyInstaller build works: built from ``packaging/netcore-desktop.spec`` and run.

What a person who downloads the packaged app would do, on the built binary itself (no
Python from the venv involved): start the sandbox, add a profile, store its key in the
system keyring, send, look at the history, and open the window, whose preview must render
in its helper process (started through the app, as frozen builds do) and load in
QtWebEngine. The build takes about a minute, once per test run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netcore_desktop import __version__

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "netcore-desktop.spec"

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def frozen_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built one-folder app's executable."""
    work = tmp_path_factory.mktemp("pyinstaller")
    result = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(work / "dist"), "--workpath", str(work / "build"), str(SPEC)],
        cwd=work, capture_output=True, text=True, timeout=840, check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    app = work / "dist" / "netcore-desktop" / "netcore-desktop"
    assert app.is_file() and os.access(app, os.X_OK)
    return app


@pytest.fixture
def frozen_env(tmp_path: Path) -> dict[str, str]:
    """The test's environment (its keyring session included) with a fresh app home."""
    return dict(os.environ, NETCORE_DESKTOP_HOME=str(tmp_path / "home"))


@pytest.fixture
def frozen_sandbox(frozen_app: Path, frozen_env: dict[str, str]) -> Iterator[str]:
    """The frozen app's own sandbox, running; yields its API base URL."""
    proc = subprocess.Popen(
        [str(frozen_app), "sandbox", "--port", "0", "--smtp-port", "0",
         "--api-key", "frozen-key"],
        env=frozen_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert proc.stdout is not None
    url = ""
    deadline = time.monotonic() + 60
    while not url and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        found = re.search(r"API:\s+(http://127\.0\.0\.1:\d+)", line)
        url = found.group(1) if found else ""
    try:
        assert url, "the frozen sandbox did not print its address"
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def _run(
    app: Path, env: dict[str, str], *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(app), *args], env=env, input=stdin, capture_output=True, text=True,
        timeout=120, check=False,
    )


def test_the_frozen_app_sends_through_the_keyring_and_keeps_history(
    frozen_app: Path, frozen_env: dict[str, str], frozen_sandbox: str
) -> None:
    assert _run(frozen_app, frozen_env, "--version").stdout.strip() == (
        f"netcore-desktop {__version__}"
    )
    added = _run(frozen_app, frozen_env, "profile", "add", "Frozen", "--base-url",
                 frozen_sandbox, "--from", "news@mail.example.org")
    assert added.returncode == 0, added.stderr
    stored = _run(frozen_app, frozen_env, "profile", "set-key", "Frozen", stdin="frozen-key")
    assert stored.returncode == 0, stored.stderr
    assert "keyring" in stored.stdout
    sent = _run(frozen_app, frozen_env, "send", "--profile", "Frozen", "--to",
                "asha@example.net", "--subject", "Packaged hello", "--body",
                "Hello **[%NAME%]**", "--attr", "NAME=Asha", "--yes")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "Sent" in sent.stdout
    history = _run(frozen_app, frozen_env, "history", "Packaged")
    assert "asha@example.net" in history.stdout and "sent 200" in history.stdout


@pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="needs the test session")
def test_the_frozen_window_renders_its_preview_in_the_helper_process(
    frozen_app: Path, frozen_env: dict[str, str]
) -> None:
    env = dict(frozen_env, NETCORE_DESKTOP_BENCH_STARTUP="1", QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [str(frozen_app), "--sandbox"], env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )
    # The start-up hook prints SHOWN at the first paint and READY once the preview has
    # loaded its first frame, then quits.
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert re.search(r"^SHOWN \d", proc.stdout, re.MULTILINE), proc.stdout
    assert re.search(r"^READY \d", proc.stdout, re.MULTILINE), proc.stderr[-4000:]
    assert "preview helper failed" not in proc.stderr
    assert "Traceback" not in proc.stderr
