"""The locked-down QtWebEngine preview (imported only once the window is on screen).

A preview must never phone home: a tracking pixel fetched by the preview marks the test mail
"opened" in Netcore's reports, and remote content can fingerprint whoever looks at it. So the
web view runs on an off-the-record profile with JavaScript off, and a request interceptor
blocks every ``http(s)`` and ``file`` load unless the person allowed remote images for this
draft. Link clicks never navigate the preview: they are handed to the window, which asks
before opening them in the system browser.

This module imports QtWebEngine, which takes a noticeable time to load; the window imports
it after it is first shown so that start-up stays fast (``shared/DESIGN.md``).
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtWebEngineCore import (
    QWebEnginePage,
    QWebEngineProfile,
    QWebEngineScript,
    QWebEngineSettings,
    QWebEngineUrlRequestInfo,
    QWebEngineUrlRequestInterceptor,
)
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QVBoxLayout, QWidget

from netcore_desktop.ui.qt_compat import emit

log = logging.getLogger(__name__)

#: Chromium refuses ``setHtml`` content above 2 MB (it travels as a data: URL).
_SET_HTML_LIMIT = 2 * 1024 * 1024 - 4096

#: Schemes the page itself is made of; everything else is a load from somewhere.
_INLINE_SCHEMES = frozenset({"data", "about", "blob"})

#: Everything up to and including the ``<body ...>`` tag: the doctype (which decides the
#: rendering mode), the head with its styles, and the body's own attributes.
_BODY_OPEN_RE = re.compile(r"<body\b[^>]*>", re.IGNORECASE)

#: Replaces the body's content in place and forces the layout, so that the callback comes
#: once the new text is laid out. Runs in Qt's application world: the page's own world has
#: JavaScript off, so nothing in the message itself (scripts, on* attributes) ever runs.
_REPLACE_BODY_JS = (
    "(function (h) {{ var b = document.body; if (!b) return -1; b.innerHTML = h; "
    "return b.offsetHeight; }})({html});"
)


class RemoteGate(QObject):
    """Decides which loads are allowed; shared by the interceptor and the page."""

    #: A load was blocked (its URL). Emitted from whatever thread the interceptor runs on.
    blocked = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._allow_remote = False
        self._allowed_file = QUrl()

    @property
    def allow_remote(self) -> bool:
        """Whether http(s) images may load (the person allowed it for this draft)."""
        with self._lock:
            return self._allow_remote

    @allow_remote.setter
    def allow_remote(self, value: bool) -> None:
        with self._lock:
            self._allow_remote = value

    def set_allowed_file(self, url: QUrl) -> None:
        """The one local file the preview may load (a body too large for setHtml)."""
        with self._lock:
            self._allowed_file = QUrl(url)

    def permits(self, url: QUrl) -> bool:
        """Whether a load of ``url`` may go ahead."""
        scheme = url.scheme().lower()
        if scheme in _INLINE_SCHEMES:
            return True
        with self._lock:
            if scheme in ("http", "https"):
                return self._allow_remote
            return scheme == "file" and not self._allowed_file.isEmpty() and (
                url.adjusted(QUrl.UrlFormattingOption.RemoveFragment)  # type: ignore[arg-type]
                == self._allowed_file
            )


class _Interceptor(QWebEngineUrlRequestInterceptor):
    def __init__(self, gate: RemoteGate, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._gate = gate

    def interceptRequest(self, info: QWebEngineUrlRequestInfo) -> None:
        url = info.requestUrl()
        if self._gate.permits(url):
            return
        info.block(True)
        emit(self._gate.blocked, url.toString())


class _LockedPage(QWebEnginePage):
    """A page that never navigates away by itself; link clicks are reported instead."""

    link_clicked = Signal(QUrl)

    def __init__(self, profile: QWebEngineProfile, gate: RemoteGate, parent: QObject) -> None:
        super().__init__(profile, parent)
        self._gate = gate
        self._profile = profile
        s = self.settings()
        off = (
            QWebEngineSettings.WebAttribute.JavascriptEnabled,
            QWebEngineSettings.WebAttribute.JavascriptCanOpenWindows,
            QWebEngineSettings.WebAttribute.JavascriptCanAccessClipboard,
            QWebEngineSettings.WebAttribute.LocalContentCanAccessRemoteUrls,
            QWebEngineSettings.WebAttribute.LocalContentCanAccessFileUrls,
            QWebEngineSettings.WebAttribute.LocalStorageEnabled,
            QWebEngineSettings.WebAttribute.PluginsEnabled,
            QWebEngineSettings.WebAttribute.DnsPrefetchEnabled,
            QWebEngineSettings.WebAttribute.AutoLoadIconsForPage,
            QWebEngineSettings.WebAttribute.WebGLEnabled,
            QWebEngineSettings.WebAttribute.Accelerated2dCanvasEnabled,
            QWebEngineSettings.WebAttribute.NavigateOnDropEnabled,
            QWebEngineSettings.WebAttribute.FullScreenSupportEnabled,
            QWebEngineSettings.WebAttribute.ScreenCaptureEnabled,
            QWebEngineSettings.WebAttribute.PdfViewerEnabled,
            QWebEngineSettings.WebAttribute.HyperlinkAuditingEnabled,
        )
        for attribute in off:
            s.setAttribute(attribute, False)
        # Images stay on so that blocked ones are *requested* and counted by the gate.
        s.setAttribute(QWebEngineSettings.WebAttribute.AutoLoadImages, True)

    def acceptNavigationRequest(
        self, url: QUrl | str, nav_type: QWebEnginePage.NavigationType, is_main_frame: bool
    ) -> bool:
        """Only our own content may load; a clicked link goes to the window instead."""
        url = QUrl(url)
        if nav_type == QWebEnginePage.NavigationType.NavigationTypeLinkClicked:
            emit(self.link_clicked, url)
            return False
        return self._gate.permits(url) and url.scheme().lower() in ("data", "about", "file")

    def createWindow(self, _type: QWebEnginePage.WebWindowType) -> QWebEnginePage:
        """``target=_blank`` links: a throwaway page that reports the link and goes away."""
        return _PopupCatcher(self._profile, self)


class _PopupCatcher(QWebEnginePage):
    def __init__(self, profile: QWebEngineProfile, origin: _LockedPage) -> None:
        super().__init__(profile, origin)
        self._origin = origin
        self.settings().setAttribute(QWebEngineSettings.WebAttribute.JavascriptEnabled, False)

    def acceptNavigationRequest(
        self, url: QUrl | str, _nav_type: QWebEnginePage.NavigationType, _is_main_frame: bool
    ) -> bool:
        url = QUrl(url)
        if url.scheme().lower() not in _INLINE_SCHEMES:
            emit(self._origin.link_clicked, url)
        self.deleteLater()
        return False


class WebPreview(QWidget):
    """The Chromium preview with its own off-the-record profile."""

    #: The page for a :meth:`show_html` call finished loading (its generation).
    shown = Signal(int)
    #: A remote load was blocked (its URL).
    blocked = Signal(str)
    #: The person clicked a link (never followed here).
    link_requested = Signal(QUrl)

    exact = True

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = QWebEngineView(self)
        self.view.setObjectName("previewWebView")
        self.view.setAccessibleName(self.tr("Message preview"))
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
        self.view.setAcceptDrops(False)
        self.gate = RemoteGate(self)
        self.profile = QWebEngineProfile()  # no storage name: off the record
        self.profile.setHttpCacheType(QWebEngineProfile.HttpCacheType.MemoryHttpCache)
        self.profile.setPersistentCookiesPolicy(
            QWebEngineProfile.PersistentCookiesPolicy.NoPersistentCookies
        )
        self._interceptor = _Interceptor(self.gate, self)
        self.profile.setUrlRequestInterceptor(self._interceptor)
        self.page = _LockedPage(self.profile, self.gate, self.view)
        # The profile must outlive its pages (Chromium warns otherwise): as the page's child
        # it is destroyed only after the page itself is gone.
        self.profile.setParent(self.page)
        self.view.setPage(self.page)
        self.page.link_clicked.connect(self.link_requested)
        self.gate.blocked.connect(self.blocked)
        self.page.loadFinished.connect(self._on_load_finished)
        self._generation = -1
        self._loading_generation = -1
        self._spill: Path | None = None
        # What the loaded page was made from up to its <body> tag (None: replace nothing).
        self._loaded_prefix: str | None = None
        self._page_loading = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

    def set_allow_remote(self, allowed: bool) -> None:
        """Let http(s) images through (for this draft only)."""
        self.gate.allow_remote = allowed

    def show_html(self, html: str, generation: int) -> None:
        """Show ``html``; :attr:`shown` follows when it is laid out.

        While typing, only the body changes: when everything up to the ``<body>`` tag is
        what the loaded page was made from, the body's content is replaced in place (about
        a third of the time of a new page for a 100 KB message, and the scroll position
        stays where the person is reading). Any other change loads a new page.
        """
        self._loading_generation = generation
        data = html.encode("utf-8")
        body_open = _BODY_OPEN_RE.search(html)
        body_start = body_open.end() if body_open is not None else -1
        prefix = html[:body_start] if body_start >= 0 else None
        if (
            prefix is not None
            and prefix == self._loaded_prefix
            and not self._page_loading
            and len(data) <= _SET_HTML_LIMIT
        ):
            script = _REPLACE_BODY_JS.format(html=json.dumps(html[body_start:]))
            self.page.runJavaScript(
                script,
                QWebEngineScript.ScriptWorldId.ApplicationWorld,
                lambda result, g=generation, h=html: self._on_replaced(result, g, h),
            )
            return
        self._load_page(html, data, prefix)

    def _load_page(self, html: str, data: bytes, prefix: str | None) -> None:
        self._page_loading = True
        if len(data) <= _SET_HTML_LIMIT:
            self._loaded_prefix = prefix
            self.gate.set_allowed_file(QUrl())
            self.page.setHtml(html, QUrl("about:blank"))
            return
        # Too large for a data: URL: load it from a private temporary file, the only file
        # the gate lets through.
        self._loaded_prefix = None
        if self._spill is None:
            self._spill = Path(tempfile.mkdtemp(prefix="netcore-preview-")) / "preview.html"
        self._spill.write_bytes(data)
        url = QUrl.fromLocalFile(str(self._spill))
        self.gate.set_allowed_file(url)
        self.page.load(url)

    def _on_replaced(self, result: object, generation: int, html: str) -> None:
        if generation != self._loading_generation:
            return  # a newer frame is on its way
        if not isinstance(result, (int, float)) or result < 0:
            # No body to replace (the page is not what we loaded): load the page anew.
            self._load_page(html, html.encode("utf-8"), self._loaded_prefix)
            return
        self._generation = generation
        emit(self.shown, generation)

    def _on_load_finished(self, ok: bool) -> None:
        self._page_loading = False
        if not ok:
            self._loaded_prefix = None
        self._generation = self._loading_generation
        emit(self.shown, self._generation)

    def cleanup(self) -> None:
        """Remove the temporary file of an oversized body, if one was written."""
        if self._spill is not None:
            try:
                self._spill.unlink(missing_ok=True)
                self._spill.parent.rmdir()
            except OSError:
                pass
            self._spill = None
