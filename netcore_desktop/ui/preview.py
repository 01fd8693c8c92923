"""The preview on the right: the message as one test recipient will see it.

Tabs show the rendered message, its plain-text alternative, the request JSON and the
headers. The rendered view is the locked-down QtWebEngine view of :mod:`.webview`, created
after the window is first shown (:meth:`PreviewPane.create_web_view`); when QtWebEngine
cannot start, a locked :class:`QTextBrowser` takes its place and says it is approximate.
A bar above the view says how many remote images were blocked and offers to allow them for
this draft.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Final, Protocol

from PySide6.QtCore import QCoreApplication, QObject, Qt, QUrl, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QFontDatabase,
    QKeySequence,
    QShortcut,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QTabWidget,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from netcore_desktop.core.message import Draft
from netcore_desktop.ui.common import human_size, icon, named, with_shortcut
from netcore_desktop.ui.qt_compat import emit
from netcore_desktop.ui.render_worker import PreviewDetails, PreviewFrame

log = logging.getLogger(__name__)

#: Width of the "mobile" preview, in CSS pixels (a common phone width).
MOBILE_WIDTH = 390

#: Set to ``basic`` to use the approximate preview even when QtWebEngine works.
PREVIEW_ENV = "NETCORE_DESKTOP_PREVIEW"

#: Links a preview may hand to the system: web pages and new emails. Anything else
#: (``file:``, ``javascript:``, ``data:``, ``ftp:``…) could open or run something on this
#: computer, so it is refused.
OPEN_SCHEMES: Final = frozenset({"http", "https", "mailto"})


def open_link(parent: QWidget, url: QUrl) -> bool:
    """Ask, then hand ``url`` to the system's browser or mail program; True if it was.

    A link of any other kind is refused with a message saying so. The question shows the
    whole URL (placeholders filled in, as the recipient gets it), and opening it may count
    as a click in tracking reports, so the default answer is Cancel.
    """
    text = url.toString()
    box = QMessageBox(parent)
    box.setObjectName("openLinkBox")
    box.setTextFormat(Qt.TextFormat.PlainText)  # a URL is never markup
    if url.scheme().lower() not in OPEN_SCHEMES:
        box.setIcon(QMessageBox.Icon.Information)
        box.setWindowTitle(QCoreApplication.translate("PreviewPane", "Link not opened"))
        box.setText(QCoreApplication.translate(
            "PreviewPane", "This link was not opened: only web (http, https) and email "
            "(mailto) links open from the preview.\n\n{url}").format(url=text))
        box.setStandardButtons(QMessageBox.StandardButton.Ok)
        box.exec()
        return False
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(QCoreApplication.translate("PreviewPane", "Open link"))
    question = (
        QCoreApplication.translate("PreviewPane", "Write this email in your mail program?")
        if url.scheme().lower() == "mailto"
        else QCoreApplication.translate("PreviewPane", "Open this link in your web browser?")
    )
    box.setText(question + "\n\n" + text + "\n\n" + QCoreApplication.translate(
        "PreviewPane", "Opening it from the preview may count as a click in tracking reports."))
    box.setStandardButtons(QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    if box.clickedButton() is not box.button(QMessageBox.StandardButton.Open):
        return False
    return QDesktopServices.openUrl(url)


class _Renderer(Protocol):
    shown: Any
    blocked: Any
    link_requested: Any
    exact: bool

    def show_html(self, html: str, generation: int) -> None: ...
    def set_allow_remote(self, allowed: bool) -> None: ...


class LockedTextBrowser(QTextBrowser):
    """The fallback preview: Qt's own HTML subset, loading nothing from anywhere."""

    shown = Signal(int)
    blocked = Signal(str)
    link_requested = Signal(QUrl)

    exact = False

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "previewTextBrowser", self.tr("Message preview (approximate)"))
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setSearchPaths([])
        self.anchorClicked.connect(self.link_requested)

    def loadResource(self, kind: int, name: QUrl | str) -> Any:
        """Inline ``data:`` images only; remote loads are counted and refused."""
        name = QUrl(name)
        scheme = name.scheme().lower()
        if scheme == "data":
            return super().loadResource(kind, name)
        if scheme in ("http", "https") and kind == QTextDocument.ResourceType.ImageResource:
            emit(self.blocked, name.toString())
        return None

    def show_html(self, html: str, generation: int) -> None:
        """Show ``html`` and report it shown at once."""
        self.setHtml(html)
        emit(self.shown, generation)

    def set_allow_remote(self, allowed: bool) -> None:
        """This view never loads remote images (it has no network access at all)."""


class PreviewPane(QWidget):
    """Rendered message, plain text, request JSON and headers for one test recipient."""

    #: A link in the preview was clicked (the window asks before opening it).
    link_requested = Signal(QUrl)
    #: The person picked another test recipient.
    recipient_selected = Signal(int)
    #: The person asked to allow (True) or block again (False) remote images.
    remote_images_toggled = Signal(bool)
    #: A frame finished loading in the view (its generation).
    shown = Signal(int)

    TAB_PREVIEW = 0
    TAB_TEXT = 1
    TAB_JSON = 2
    TAB_HEADERS = 3

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "previewPane", self.tr("Preview"))
        self._renderer: _Renderer | None = None
        self._pending: PreviewFrame | None = None
        self._frame: PreviewFrame | None = None
        self._blocked: set[str] = set()
        self._allow_remote = False
        self._shown_generation = -1
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        # --- top bar: recipient and width ---------------------------------------------------
        self.recipient = named(
            QComboBox(), "previewRecipient", self.tr("Preview as recipient"),
            self.tr("Whose values fill the [%KEY%] placeholders in the preview"),
        )
        self.recipient.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.recipient.setMinimumContentsLength(16)
        recipient_label = QLabel(self.tr("Previe&w as"))
        recipient_label.setBuddy(self.recipient)
        self.desktop_button = named(
            QToolButton(), "previewDesktop", self.tr("Desktop width"),
            with_shortcut(self.tr("Preview at desktop width"), "Ctrl+Shift+D"),
        )
        self.mobile_button = named(
            QToolButton(), "previewMobile", self.tr("Mobile width"),
            with_shortcut(self.tr("Preview at phone width (390 px)"), "Ctrl+Shift+M"),
        )
        for button, name, text in (
            (self.desktop_button, "desktop", self.tr("Desktop")),
            (self.mobile_button, "mobile", self.tr("Mobile")),
        ):
            button.setIcon(icon(name))
            button.setText(text)
            button.setCheckable(True)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setAutoRaise(True)
        self.desktop_button.setChecked(True)
        self._width_group = QButtonGroup(self)
        self._width_group.setExclusive(True)
        self._width_group.addButton(self.desktop_button)
        self._width_group.addButton(self.mobile_button)
        top = QHBoxLayout()
        top.addWidget(recipient_label)
        top.addWidget(self.recipient, 1)
        top.addStretch(0)
        top.addWidget(self.desktop_button)
        top.addWidget(self.mobile_button)

        # --- the message "envelope" as an inbox shows it --------------------------------------
        self.subject_label = named(QLabel(), "previewSubject", self.tr("Subject as received"))
        self.subject_label.setProperty("role", "previewSubject")
        self.subject_label.setWordWrap(True)
        self.subject_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.from_label = named(QLabel(), "previewFrom", self.tr("From and To as received"))
        self.from_label.setProperty("role", "hint")
        self.from_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.from_label.setWordWrap(True)
        envelope = QFrame()
        envelope.setObjectName("previewEnvelope")
        envelope.setFrameShape(QFrame.Shape.StyledPanel)
        env_layout = QVBoxLayout(envelope)
        env_layout.setContentsMargins(10, 6, 10, 6)
        env_layout.setSpacing(2)
        env_layout.addWidget(self.subject_label)
        env_layout.addWidget(self.from_label)

        # --- remote images bar -------------------------------------------------------------
        self.remote_bar = QFrame()
        self.remote_bar.setObjectName("remoteImagesBar")
        self.remote_bar.setProperty("role", "infoBar")
        self.remote_label = named(QLabel(), "remoteImagesLabel", self.tr("Remote images"))
        self.remote_label.setWordWrap(True)
        self.remote_button = named(
            QPushButton(self.tr("Allow remote images for this draft")), "allowRemoteImages",
            self.tr("Allow remote images for this draft"),
            with_shortcut(
                self.tr("Load images from the internet in this draft's preview"), "Ctrl+Shift+I"
            ),
        )
        self.remote_button.clicked.connect(self._on_remote_clicked)
        bar_layout = QHBoxLayout(self.remote_bar)
        bar_layout.setContentsMargins(8, 4, 8, 4)
        bar_layout.addWidget(self.remote_label, 1)
        bar_layout.addWidget(self.remote_button)
        self.remote_bar.setVisible(False)

        # --- the views ---------------------------------------------------------------------
        self.approx_label = named(
            QLabel(
                self.tr(
                    "Approximate preview: the full browser engine could not start, so this "
                    "view only knows basic HTML. Mail clients will show more styling."
                )
            ),
            "approximateLabel", self.tr("Approximate preview notice"),
        )
        self.approx_label.setProperty("role", "warningBar")
        self.approx_label.setWordWrap(True)
        self.approx_label.setVisible(False)
        self.placeholder = QLabel(self.tr("Preparing the preview…"))
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setObjectName("previewPlaceholder")
        self.stage = QStackedWidget()
        self.stage.setObjectName("previewStage")
        self.stage.addWidget(self.placeholder)
        self.canvas = QWidget()
        self.canvas.setObjectName("previewCanvas")
        self._canvas_layout = QHBoxLayout(self.canvas)
        self._canvas_layout.setContentsMargins(0, 0, 0, 0)
        self.stage.addWidget(self.canvas)
        self.stats_label = named(QLabel(), "previewStats", self.tr("Preview statistics"))
        self.stats_label.setProperty("role", "hint")

        preview_page = QWidget()
        page_layout = QVBoxLayout(preview_page)
        page_layout.setContentsMargins(0, 4, 0, 0)
        page_layout.setSpacing(4)
        page_layout.addWidget(envelope)
        page_layout.addWidget(self.remote_bar)
        page_layout.addWidget(self.approx_label)
        page_layout.addWidget(self.stage, 1)
        page_layout.addWidget(self.stats_label)

        self.text_view = named(
            QPlainTextEdit(), "previewPlainText", self.tr("Plain-text version"),
            self.tr("The plain-text alternative (what text-only clients show)"),
        )
        self.json_view = named(
            QPlainTextEdit(), "previewRequestJson", self.tr("Request JSON"),
            self.tr("The request body sent to Netcore (attachments shortened)"),
        )
        self.headers_view = named(
            QPlainTextEdit(), "previewHeaders", self.tr("Headers"),
            self.tr("The request line and this recipient's message headers"),
        )
        for view in (self.text_view, self.json_view, self.headers_view):
            view.setReadOnly(True)
            view.setFont(mono)
            view.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)

        self.tabs = named(QTabWidget(), "previewTabs", self.tr("Preview tabs"))
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(preview_page, self.tr("Preview"))
        self.tabs.addTab(self.text_view, self.tr("Plain text"))
        self.tabs.addTab(self.json_view, self.tr("Request JSON"))
        self.tabs.addTab(self.headers_view, self.tr("Headers"))

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 8, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)

        self.recipient.currentIndexChanged.connect(self._on_recipient_changed)
        self.desktop_button.toggled.connect(self._apply_width)
        for seq, slot in (
            ("Ctrl+Shift+D", self.desktop_button.click),
            ("Ctrl+Shift+M", self.mobile_button.click),
            ("Ctrl+Shift+I", self.remote_button.click),
        ):
            QShortcut(QKeySequence(seq), self).activated.connect(slot)
        QWidget.setTabOrder(self.recipient, self.desktop_button)
        QWidget.setTabOrder(self.desktop_button, self.mobile_button)
        QWidget.setTabOrder(self.mobile_button, self.tabs)
        QWidget.setTabOrder(self.tabs, self.remote_button)

    # --- the view --------------------------------------------------------------------------

    @property
    def renderer(self) -> QObject | None:
        """The widget showing the message (web view or fallback), once created."""
        return self._renderer  # type: ignore[return-value]

    @property
    def is_exact(self) -> bool:
        """Whether the preview uses the full browser engine."""
        return bool(self._renderer is not None and self._renderer.exact)

    def create_web_view(self) -> None:
        """Create the preview view: QtWebEngine, or the approximate fallback."""
        if self._renderer is not None:
            return
        renderer: QWidget
        if os.environ.get(PREVIEW_ENV, "").strip().lower() == "basic":
            renderer = LockedTextBrowser()
        else:
            try:
                from netcore_desktop.ui.webview import WebPreview

                renderer = WebPreview()
            except Exception:  # ImportError, missing libraries, no GPU/sandbox support
                log.exception("QtWebEngine could not start; using the approximate preview")
                renderer = LockedTextBrowser()
        self._install(renderer)

    def _install(self, renderer: QWidget) -> None:
        self._renderer = renderer  # type: ignore[assignment]
        assert self._renderer is not None
        self._renderer.shown.connect(self._on_shown)
        self._renderer.blocked.connect(self._on_blocked)
        self._renderer.link_requested.connect(self.link_requested)
        self._renderer.set_allow_remote(self._allow_remote)
        self.approx_label.setVisible(not self._renderer.exact)
        self._canvas_layout.addStretch(0)
        self._canvas_layout.addWidget(renderer, 1)
        self._canvas_layout.addStretch(0)
        self.stage.setCurrentWidget(self.canvas)
        QWidget.setTabOrder(self.tabs, renderer)
        self._apply_width()
        if self._pending is not None:
            frame, self._pending = self._pending, None
            self.show_frame(frame)

    def _apply_width(self, *_args: object) -> None:
        if self._renderer is None:
            return
        widget: QWidget = self._renderer  # type: ignore[assignment]
        mobile = self.mobile_button.isChecked()
        if mobile:
            widget.setFixedWidth(MOBILE_WIDTH)
            widget.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Expanding)
            self._canvas_layout.setStretch(0, 1)
            self._canvas_layout.setStretch(2, 1)
        else:
            widget.setMinimumWidth(0)
            widget.setMaximumWidth(16777215)
            widget.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            self._canvas_layout.setStretch(0, 0)
            self._canvas_layout.setStretch(2, 0)

    # --- showing results --------------------------------------------------------------------

    def set_recipients(self, draft: Draft, selected: int) -> None:
        """Fill the recipient chooser from the draft's envelopes."""
        labels = []
        for i, env in enumerate(draft.envelopes):
            first = env.to[0] if env.to else None
            who = first.display() if first is not None and first.email else self.tr("(no address)")
            labels.append(f"{i + 1} · {who}")
        if not labels:
            labels = [self.tr("(no recipients yet)")]
        current = [self.recipient.itemText(i) for i in range(self.recipient.count())]
        if current != labels:
            self.recipient.blockSignals(True)
            self.recipient.clear()
            self.recipient.addItems(labels)
            self.recipient.blockSignals(False)
        if self.recipient.currentIndex() != selected and 0 <= selected < len(labels):
            self.recipient.blockSignals(True)
            self.recipient.setCurrentIndex(selected)
            self.recipient.blockSignals(False)

    def _on_recipient_changed(self, index: int) -> None:
        if index >= 0:
            emit(self.recipient_selected, index)

    def show_frame(self, frame: PreviewFrame) -> None:
        """Show a freshly rendered frame (kept until the view exists)."""
        self._frame = frame
        self.subject_label.setText(frame.subject or self.tr("(no subject)"))
        line = self.tr("From {sender}  ·  To {to}").format(
            sender=frame.sender or self.tr("(no sender)"), to=frame.to or self.tr("(nobody)")
        )
        if frame.cc:
            line += "  ·  " + self.tr("Cc {cc}").format(cc=frame.cc)
        if frame.bcc:
            line += "  ·  " + self.tr("Bcc {bcc}").format(bcc=frame.bcc)
        self.from_label.setText(line)
        self.stats_label.setText(
            self.tr("HTML {size} · rendered in {ms} ms").format(
                size=human_size(frame.sent_bytes),
                ms=f"{frame.render_ms:.0f}" if frame.render_ms >= 1 else "<1",
            )
        )
        if self._renderer is None:
            self._pending = frame
            return
        self._blocked.clear()
        self._update_bar()
        self._renderer.show_html(frame.html, frame.generation)

    def show_details(self, details: PreviewDetails) -> None:
        """Fill the plain-text, JSON and headers tabs."""
        for view, text in (
            (self.text_view, details.text),
            (self.json_view, details.request_json),
            (self.headers_view, details.headers),
        ):
            if view.toPlainText() != text:
                bar = view.verticalScrollBar()
                position = bar.value()
                view.setPlainText(text)
                bar.setValue(position)

    def _on_shown(self, generation: int) -> None:
        self._shown_generation = generation
        emit(self.shown, generation)

    @property
    def shown_generation(self) -> int:
        """Generation of the frame the view shows now."""
        return self._shown_generation

    # --- remote images -----------------------------------------------------------------------

    @property
    def blocked_count(self) -> int:
        """Remote images blocked in the frame shown now."""
        return len(self._blocked)

    def _on_blocked(self, url: str) -> None:
        if url.lower().startswith(("http:", "https:")):
            self._blocked.add(url)
            self._update_bar()

    def set_allow_remote(self, allowed: bool) -> None:
        """Apply the draft's remote-images choice to the next frame shown.

        The window renders a fresh frame right after, so the change shows at once without
        reloading a frame that may already be out of date.
        """
        self._allow_remote = allowed
        if self._renderer is not None:
            self._renderer.set_allow_remote(allowed)
        self._update_bar()

    def _on_remote_clicked(self) -> None:
        emit(self.remote_images_toggled, not self._allow_remote)

    def _update_bar(self) -> None:
        n = len(self._blocked)
        if self._allow_remote and self.is_exact:
            self.remote_label.setText(
                self.tr("Remote images are loaded for this draft. Opening them may count as "
                        "an open in tracking reports.")
            )
            self.remote_button.setText(self.tr("Block remote images"))
            self.remote_bar.setVisible(True)
        elif n:
            text = (
                self.tr("1 remote image was blocked")
                if n == 1
                else self.tr("{n} remote images were blocked").format(n=n)
            )
            self.remote_label.setText(
                text + self.tr(" to keep the preview from being counted as an open.")
            )
            self.remote_button.setText(self.tr("Allow remote images for this draft"))
            self.remote_button.setVisible(self.is_exact)
            self.remote_bar.setVisible(True)
        else:
            self.remote_bar.setVisible(False)
