"""Light or dark follows the system's setting, read through a real platform theme.

The window runs on a real X server (Xvfb) with Qt's GTK platform theme, and the system's
choice is the GTK theme: ``Adwaita:dark`` or ``Adwaita``. The test looks at the pixels of
the window as drawn, where a person would see the difference: the subject field, the
window, and the Send button in the app's own accent colour for that scheme.
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
ThemeFollower(app)  # as run_app does
window.resize(1200, 800)
window.show()
end = time.monotonic() + 2
while time.monotonic() < end:
    app.processEvents()
    time.sleep(0.01)
image = window.grab().toImage()
field = window.form.subject
centre = field.mapTo(window, field.rect().center())
print("SCHEME", app.styleHints().colorScheme().name)
print("FIELD", image.pixelColor(centre).lightness())
print("WINDOW", image.pixelColor(5, image.height() - 5).lightness())
button = window.send_button
edge = button.mapTo(window, button.rect().center())
edge.setX(button.mapTo(window, button.rect().topLeft()).x() + 6)
print("SEND", image.pixelColor(edge).name())
window.shutdown()
window.close()
"""


def _draw(tmp_path: Path, gtk_theme: str) -> dict[str, str]:
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="xcb",
        QT_QPA_PLATFORMTHEME="gtk3",
        GTK_THEME=gtk_theme,
        NETCORE_DESKTOP_HOME=str(tmp_path / gtk_theme.replace(":", "-")),
    )
    result = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x900x24", sys.executable, "-c", _PROBE],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(re.findall(r"^(SCHEME|FIELD|WINDOW|SEND) (\S+)$", result.stdout, re.MULTILINE))


def _near(colour: str, wanted: str) -> bool:
    pairs = zip(bytes.fromhex(colour[1:]), bytes.fromhex(wanted[1:]), strict=True)
    return all(abs(a - b) <= 12 for a, b in pairs)


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run (.ci/run installs it)")
def test_the_window_is_dark_when_the_system_is_and_light_when_it_is_not(tmp_path: Path) -> None:
    dark = _draw(tmp_path, "Adwaita:dark")
    assert dark.get("SCHEME") == "Dark", "the GTK platform theme did not load (libgtk-3-0?)"
    assert int(dark["FIELD"]) < 90 and int(dark["WINDOW"]) < 90, dark
    # The app's own dark colours, not only the system's palette: the Send button.
    assert _near(dark["SEND"], DARK["accent"]), dark
    light = _draw(tmp_path, "Adwaita")
    assert light.get("SCHEME") == "Light"
    assert int(light["FIELD"]) > 200 and int(light["WINDOW"]) > 180, light
    assert _near(light["SEND"], LIGHT["accent"]), light
