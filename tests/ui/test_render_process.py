"""The preview's helper process: from a checkout and from a frozen (packaged) build.

The preview renders in a separate process so that typing never waits for the renderer. In
a PyInstaller build ``sys.executable`` is the app itself, which takes no ``-c``; the helper
is then started as ``netcore-desktop --preview-helper``. These tests start the helper both
ways and check that it renders the recipient's values into the preview.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from netcore_desktop.core.message import Address, Draft, Envelope
from netcore_desktop.ui.render_process import (
    HELPER_FLAG,
    PreviewFrame,
    RenderProcess,
    RenderRequest,
    helper_command,
)


def _request() -> RenderRequest:
    draft = Draft(
        sender=Address("news@mail.example.org", "Example News"),
        subject="Hello [%FIRST_NAME%]",
        body="Hi **[%FIRST_NAME%]**, your order has shipped.",
        envelopes=(Envelope(to=(Address("asha@example.net"),), attributes={"FIRST_NAME": "Asha"}),),
    )
    return RenderRequest(generation=7, draft=draft, envelope=0)


def _render_once(process: RenderProcess) -> PreviewFrame:
    try:
        frame = process.call("frame", _request())
    finally:
        process.stop()
    assert isinstance(frame, PreviewFrame)
    return frame


def test_the_helper_renders_the_recipients_values() -> None:
    frame = _render_once(RenderProcess())
    assert frame.generation == 7
    assert frame.subject == "Hello Asha"
    assert "<strong" in frame.html and "Asha" in frame.html
    assert "[%FIRST_NAME%]" not in frame.html


def test_a_frozen_build_starts_the_helper_through_the_app_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands in for the packaged binary: an executable that runs the app's entry point with
    # whatever arguments it is given, and that refuses "-c" like the real one would.
    app = tmp_path / "netcore-desktop"
    app.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-c" ]; then echo "unknown option -c" >&2; exit 2; fi\n'
        f'exec "{sys.executable}" -m netcore_desktop "$@"\n',
        encoding="utf-8",
    )
    app.chmod(app.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app))
    assert helper_command() == [str(app), HELPER_FLAG]
    frame = _render_once(RenderProcess())
    assert frame.subject == "Hello Asha"
    assert "Asha" in frame.html
