"""Fixtures of the window tests: real widgets (pytest-qt), the real sandbox, the real keyring.

Qt runs offscreen and Chromium without its sandbox (the tests run as root in CI); both are
set with ``setdefault`` so a developer can still watch the tests on a real display. Every
test gets its own ``NETCORE_DESKTOP_HOME``, so profiles, history, autosave and window
settings never leak between tests. Qt messages of level CRITICAL fail the test.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, Qt

import netcore_desktop.ui  # noqa: F401  (guards None/True/False against PySide6 6.12.0)

# QtWebEngine must be set up before the QApplication exists (pytest-qt creates it later).
QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
import PySide6.QtWebEngineWidgets  # noqa: E402, F401

from netcore_desktop.core.client import RetryPolicy  # noqa: E402
from netcore_desktop.core.contract import Region  # noqa: E402
from netcore_desktop.core.profiles import Profile, ProfileStore  # noqa: E402
from netcore_desktop.core.secrets import SecretStore  # noqa: E402
from netcore_desktop.sandbox import EmbeddedSandbox  # noqa: E402

#: Retries without the real waits (a 500 is tried four times).
FAST_RETRY = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)

_UI_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fail window tests on CRITICAL Qt messages (e.g. a thread destroyed while running)."""
    for item in items:
        if _UI_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.qt_log_level_fail("CRITICAL"))


@pytest.fixture(autouse=True)
def app_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home for the app's files, for this test alone."""
    home = tmp_path / "home"
    monkeypatch.setenv("NETCORE_DESKTOP_HOME", str(home))
    monkeypatch.delenv("NETCORE_DESKTOP_PREVIEW", raising=False)
    return home


@pytest.fixture
def sandbox_profile(sandbox: EmbeddedSandbox, app_home: Path) -> Profile:
    """A saved profile pointing at the test sandbox, its key in the real keyring."""
    profile = Profile(
        name=f"UI test {uuid.uuid4().hex[:6]}",
        region=Region.CUSTOM,
        base_url=sandbox.base_url,
        sender_email="news@mail.example.org",
        sender_name="Example News",
        test_address="me@example.org",
    )
    secrets = SecretStore()
    if not secrets.usable:
        pytest.skip("needs a real keyring: run the tests with `bash tests/run.sh`")
    store = ProfileStore()
    store.save(profile)
    store.set_last_used(profile.name)
    secrets.set_api_key(profile.name, sandbox.api_key)
    return profile


WindowFactory = Callable[..., Any]


@pytest.fixture
def make_window(qtbot: Any) -> Iterator[WindowFactory]:
    """Create shown main windows; every one is shut down (threads stopped) after the test."""
    from netcore_desktop.ui.main_window import MainWindow

    made: list[MainWindow] = []

    def make(*, show: bool = True, **kwargs: Any) -> MainWindow:
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("offer_first_run", False)
        window = MainWindow(**kwargs)
        made.append(window)
        if show:
            window.show()
            qtbot.waitUntil(lambda: window.preview.renderer is not None, timeout=15000)
        return window

    yield make
    for window in made:
        window.shutdown()
        window.close()
        window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
