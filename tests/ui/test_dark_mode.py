"""Light or dark follows the system's setting, read through a real platform theme.

The window runs on a real X server (Xvfb) with Qt's GTK platform theme, and the system's
choice is the GTK theme: ``Adwaita:dark`` or ``Adwaita``. The test looks at the pixels of
the window as drawn, where a person would see the difference: the subject field, the
window, and the Send button in the app's own accent colour for that scheme. Then the scheme
changes while the window is open (``QStyleHints.setColorScheme``, which goes through the
same platform theme and signals as a change made by the desktop) and the window follows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netcore_desktop.ui.style import DARK, LIGHT

_PROBE = """
import sys, time
from PySide6.QtCore import QCoreApplication, Qt
QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
from netcore_desktop.ui.app import make_application
app = make_application()
from netcore_desktop.ui.main_window import MainWindow
from netcore_desktop.ui.style import ThemeFollower
window = MainWindow(restore_draft=False, offer_first_run=False)
follower = ThemeFollower(app)  # as run_app does
window.resize(1200, 800)
window.show()

def settle(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)

def look(prefix):
    image = window.grab().toImage()
    field = window.form.subject
    centre = field.mapTo(window, field.rect().center())
    print(prefix + "SCHEME", app.styleHints().colorScheme().name)
    print(prefix + "FIELD", image.pixelColor(centre).lightness())
    print(prefix + "WINDOW", image.pixelColor(5, image.height() - 5).lightness())
    button = window.send_button
    edge = button.mapTo(window, button.rect().center())
    edge.setX(button.mapTo(window, button.rect().topLeft()).x() + 6)
    print(prefix + "SEND", image.pixelColor(edge).name())

settle(2)
look("")
# The scheme changes while the window is open (as when the desktop switches at sunset).
app.styleHints().setColorScheme(getattr(Qt.ColorScheme, sys.argv[1]))
settle(1)
look("AFTER_")
window.shutdown()
window.close()
"""

def _draw(tmp_path: Path, gtk_theme: str, then: str) -> dict[str, str]:
    """What the window looks like with ``gtk_theme``, and (``AFTER_``) after the scheme
    changes to ``then`` while it runs."""
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="xcb",
        QT_QPA_PLATFORMTHEME="gtk3",
        GTK_THEME=gtk_theme,
        NETCORE_DESKTOP_HOME=str(tmp_path / gtk_theme.replace(":", "-")),
    )
    result = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x900x24", sys.executable, "-c", _PROBE, then],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = r"^((?:AFTER_)?(?:SCHEME|FIELD|WINDOW|SEND)) (\S+)$"
    return dict(re.findall(line, result.stdout, re.MULTILINE))


def _near(colour: str, wanted: str) -> bool:
    pairs = zip(bytes.fromhex(colour[1:]), bytes.fromhex(wanted[1:]), strict=True)
    return all(abs(a - b) <= 12 for a, b in pairs)


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (.ci/run installs it)")
def test_the_window_follows_the_systems_scheme_at_start_and_while_it_runs(tmp_path: Path) -> None:
    dark = _draw(tmp_path, "Adwaita:dark", then="Light")
    assert dark.get("SCHEME") == "Dark", "the GTK platform theme did not load (libgtk-3-0?)"
    _assert_dark(dark, "")
    light = _draw(tmp_path, "Adwaita", then="Dark")
    assert light.get("SCHEME") == "Light"
    _assert_light(light, "")
    # Changed while running: every part follows, the text fields too (they kept the old
    # scheme's colours when the sheet was applied before the new palette arrived).
    assert dark["AFTER_SCHEME"] == "Light" and light["AFTER_SCHEME"] == "Dark"
    _assert_light(dark, "AFTER_")
    _assert_dark(light, "AFTER_")


def _assert_dark(seen: dict[str, str], prefix: str) -> None:
    assert int(seen[prefix + "FIELD"]) < 90 and int(seen[prefix + "WINDOW"]) < 90, seen
    # The app's own dark colours, not only the system's palette: the Send button.
    assert _near(seen[prefix + "SEND"], DARK["accent"]), seen


def _assert_light(seen: dict[str, str], prefix: str) -> None:
    assert int(seen[prefix + "FIELD"]) > 200 and int(seen[prefix + "WINDOW"]) > 180, seen
    assert _near(seen[prefix + "SEND"], LIGHT["accent"]), seen
