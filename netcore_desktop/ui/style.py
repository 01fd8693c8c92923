"""Light and dark styling that follows the system colour scheme.

Qt picks the palette from the platform; this module only adds the app's own accents (the
LIVE/SANDBOX badge, problem colours, info bars) from ``resources/styles/app.qss``, filled
with a light or dark set of colours, and re-applies them when the system scheme changes.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from netcore_desktop.ui.common import resources_dir

log = logging.getLogger(__name__)

LIGHT: Final = {
    "muted": "#59636e",
    "error": "#cf222e",
    "error_bg": "#ffebe9",
    "warn": "#9a6700",
    "warn_bg": "#fff8c5",
    "warn_border": "#d4a72c",
    "ok": "#1a7f37",
    "ok_bg": "#dafbe1",
    "info_bg": "#ddf4ff",
    "info_border": "#54aeff",
    "panel": "#f6f8fa",
    "border": "#d0d7de",
    "live": "#cf222e",
    "sandbox": "#1a7f37",
    "accent": "#0969da",
    "accent_border": "#0550ae",
    "accent_hover": "#0550ae",
    "canvas": "#eaeef2",
}

DARK: Final = {
    "muted": "#9198a1",
    "error": "#f85149",
    "error_bg": "#3d1b1d",
    "warn": "#d29922",
    "warn_bg": "#3b2e0a",
    "warn_border": "#9e6a03",
    "ok": "#3fb950",
    "ok_bg": "#12261b",
    "info_bg": "#0c2d4f",
    "info_border": "#1f6feb",
    "panel": "#161b22",
    "border": "#30363d",
    "live": "#da3633",
    "sandbox": "#238636",
    "accent": "#1f6feb",
    "accent_border": "#388bfd",
    "accent_hover": "#388bfd",
    "canvas": "#0d1117",
}

_TOKEN_RE: Final = re.compile(r"\{\{(\w+)\}\}")


def is_dark() -> bool:
    """Whether the system asks for a dark scheme (or the palette is dark)."""
    scheme = QGuiApplication.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Dark:
        return True
    if scheme == Qt.ColorScheme.Light:
        return False
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128


def style_sheet(dark: bool) -> str:
    """The app style sheet for the light or dark scheme."""
    path = resources_dir() / "styles" / "app.qss"
    try:
        template = path.read_text(encoding="utf-8")
    except OSError:
        log.warning("style sheet %s missing", path)
        return ""
    colours = DARK if dark else LIGHT
    return _TOKEN_RE.sub(lambda m: colours.get(m.group(1), m.group(0)), template)


class ThemeFollower(QObject):
    """Applies the style sheet now and whenever the system colour scheme changes.

    When the scheme changes while the app runs, Qt announces the new scheme before the
    platform theme has given the application its new palette, and widgets polished by a
    style sheet keep the palette they had then: the text fields stayed light in a dark
    window. So the sheet is applied again once the palette has changed too, after the
    events of the change (one re-application for both signals).
    """

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self._app = app
        self._applied: tuple[str, int, int] | None = None
        self._again = QTimer(self)
        self._again.setSingleShot(True)
        self._again.setInterval(0)
        self._again.timeout.connect(self.apply)
        self.apply()
        app.styleHints().colorSchemeChanged.connect(self._on_scheme_changed)
        app.paletteChanged.connect(self._on_palette_changed)

    def _on_scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        self._again.start()

    def _on_palette_changed(self, _palette: QPalette) -> None:
        self._again.start()

    def apply(self) -> None:
        """Fill and set the style sheet for the current scheme and palette."""
        sheet = style_sheet(is_dark())
        palette = self._app.palette()
        state = (sheet, palette.color(QPalette.ColorRole.Base).rgba(),
                 palette.color(QPalette.ColorRole.Window).rgba())
        if state == self._applied:
            return
        self._applied = state
        self._app.setStyleSheet(sheet)
