"""The main window: compose on the left, preview and checks on the right, the log below.

The window wires the parts together and owns nothing slow: rendering runs in the preview
thread (:mod:`.render_worker`), sending, keyring and history in the worker thread
(:mod:`.send_worker`), autosave in its writer thread (:mod:`.autosave`). The profile bar at
the top always shows the active profile with a LIVE or SANDBOX badge.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QKeySequence,
    QPaintEvent,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolBar,
    QWidget,
)

from netcore_desktop import __version__
from netcore_desktop.core.message import (
    Address,
    Draft,
    Envelope,
    draft_from_dict,
    draft_to_dict,
)
from netcore_desktop.ui.autosave import Autosaver, _write_atomically
from netcore_desktop.ui.checks_view import ChecksView
from netcore_desktop.ui.common import icon, named, repolish, resources_dir, with_shortcut
from netcore_desktop.ui.compose_controller import ComposeController
from netcore_desktop.ui.compose_form import ComposeForm
from netcore_desktop.ui.log_model import ResponseLogModel
from netcore_desktop.ui.log_view import ResponseLogView
from netcore_desktop.ui.preview import PreviewPane, open_link
from netcore_desktop.ui.qt_compat import emit
from netcore_desktop.ui.render_worker import (
    PreviewDetails,
    PreviewFrame,
    PreviewRenderer,
    PreviewTarget,
    RenderRequest,
)
from netcore_desktop.ui.send_worker import (
    JobFinished,
    JobNeedsConfirmation,
    KeyStatus,
    SandboxReady,
    SecretsStatus,
    WorkerHandle,
    is_live,
)

if TYPE_CHECKING:
    from netcore_desktop.core.checks import Problem
    from netcore_desktop.core.client import RetryPolicy
    from netcore_desktop.core.profiles import Profile, ProfileStore

log = logging.getLogger(__name__)

#: Delay between the last edit and showing the new preview (the render itself starts at once).
#: Just above the gap between a fast typist's keys (~40 ms), so the preview does not reload
#: mid-word, and below a 50 KB body's render time, so it adds no wait after the last key.
PREVIEW_DEBOUNCE_MS: Final = 50

SAMPLE_DRAFT: Final = "drafts/sample-welcome.json"

_API_FIELD_RE: Final = re.compile(r"^personalizations\[(\d+)\]\.(\w+)")
_API_FIELDS: Final = {
    "from": "from",
    "subject": "subject",
    "content": "body",
    "reply_to": "reply_to",
    "attachments": "attachments",
    "tags": "tags",
    "schedule": "schedule",
    "priorityflag": "priority",
    "template_id": "template_id",
    "bcc": "bcc",
    "personalizations": "to",
}


def api_field_to_form(field: str) -> tuple[str, int | None]:
    """The form field (checks vocabulary) an API error's field path names."""
    match = _API_FIELD_RE.match(field)
    if match:
        envelope, kind = int(match.group(1)), match.group(2)
        if kind in ("to", "cc", "bcc"):
            return kind, envelope
        return "recipients", envelope
    head = re.split(r"[.\[]", field, maxsplit=1)[0]
    return _API_FIELDS.get(head, ""), None


def sample_draft() -> Draft | None:
    """The sample draft shipped in ``resources/`` (``None`` if missing)."""
    path = resources_dir() / SAMPLE_DRAFT
    try:
        return draft_from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        log.warning("sample draft unavailable: %s", exc)
        return None


class MainWindow(QMainWindow):
    """The Netcore Desktop window."""

    #: The window was painted for the first time.
    first_painted = Signal()
    #: The window was shown, profiles loaded and the preview view created.
    ready = Signal()
    #: A send ended (the :class:`JobFinished`), after the log was updated.
    send_finished = Signal(object)
    #: The active profile changed (its name).
    profile_changed = Signal(str)

    def __init__(
        self,
        *,
        profile_name: str | None = None,
        store: ProfileStore | None = None,
        retry: RetryPolicy | None = None,
        autosave_path: Path | None = None,
        restore_draft: bool = True,
        use_sample_draft: bool = False,
        start_sandbox: bool = False,
        offer_first_run: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setAccessibleName(self.tr("Netcore Desktop"))
        self.setWindowIcon(icon("netcore-desktop"))
        self._fit_to_screen()
        # Created at first use: the profiles module loads the address validator (~35 ms),
        # which is not needed before the window is on screen.
        self._store_given = store
        self._profiles: list[Profile] = []
        self._profile: Profile | None = None
        self._profile_error = ""
        self._shown_once = False
        self._painted = False
        self._ready_after_sandbox = False
        self._started_up = False
        self._closing = False
        self._shut = False
        self._job_id: int | None = None
        self._generation = 0
        self._frame: PreviewFrame | None = None
        self._last_request: RenderRequest | None = None
        self._display_pending = False
        self._details_generation = -1
        self._server_problems: tuple[Problem, ...] = ()
        self._local_problems: tuple[Problem, ...] = ()
        self._saved_draft: Draft | None = None
        self._start_sandbox = start_sandbox
        self._offer_first_run = offer_first_run
        self._sandbox_requested = False
        self._secrets_status: SecretsStatus | None = None
        #: ``time.perf_counter()`` of the last edit and of the last preview shown (for tests).
        self.last_edit_at = 0.0
        self.last_shown_at = 0.0

        # --- parts ------------------------------------------------------------------------
        self.controller = ComposeController(self)
        self.worker = WorkerHandle(retry, self)
        self.renderer = PreviewRenderer(self)
        self.form = ComposeForm(self.controller)
        self.preview = PreviewPane()
        self.checks = ChecksView()
        self.log_model = ResponseLogModel(self)
        self.log_view = ResponseLogView(self.log_model)
        self.autosaver = Autosaver(self.controller, autosave_path, self)

        self._build_actions()
        self._build_profile_bar()
        self._build_layout()
        self._build_menus()
        self._connect()

        # --- state ------------------------------------------------------------------------
        # Profiles are read right after the first paint (reading them loads the address
        # validator, ~35 ms): the window appears sooner, the profile bar a frame later.
        self._wanted_profile = profile_name
        self._set_profile(None)
        self.badge.setText("…")
        self._load_first_draft(restore_draft, use_sample_draft)
        self._restore_geometry()
        self._update_title()

    # --- building ---------------------------------------------------------------------------

    def _fit_to_screen(self) -> None:
        screen = self.screen()
        available = screen.availableGeometry() if screen is not None else None
        width, height = 1440, 900
        if available is not None and available.width() > 0:
            width = min(width, available.width())
            height = min(height, available.height())
        self.resize(width, height)

    def _action(self, name: str, text: str, shortcut: str | QKeySequence.StandardKey | None,
                tip: str, icon_name: str = "") -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if icon_name:
            action.setIcon(icon(icon_name))
        if shortcut is not None:
            seq = QKeySequence(shortcut)
            action.setShortcut(seq)
            action.setToolTip(with_shortcut(tip, seq))
        else:
            action.setToolTip(tip)
        action.setStatusTip(tip)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.act_new = self._action(
            "actionNew", self.tr("&New draft"), QKeySequence.StandardKey.New,
            self.tr("Start a new, empty draft"), "new",
        )
        self.act_open = self._action(
            "actionOpen", self.tr("&Open draft…"), QKeySequence.StandardKey.Open,
            self.tr("Open a saved draft file"), "open",
        )
        self.act_save = self._action(
            "actionSave", self.tr("&Save draft"), QKeySequence.StandardKey.Save,
            self.tr("Save the draft to a file"), "save",
        )
        self.act_save_as = self._action(
            "actionSaveAs", self.tr("Save draft &as…"), "Ctrl+Shift+S",
            self.tr("Save the draft to a new file"),
        )
        self.act_sample = self._action(
            "actionSample", self.tr("Open the sa&mple draft"), None,
            self.tr("Load the sample welcome message with two test recipients"),
        )
        self.act_quit = self._action(
            "actionQuit", self.tr("&Quit"), "Ctrl+Q", self.tr("Close Netcore Desktop")
        )
        self.act_send = self._action(
            "actionSend", self.tr("&Send"), "Ctrl+Return",
            self.tr("Check and send to every test recipient"), "send",
        )
        self.act_send.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.act_send_test = self._action(
            "actionSendTest", self.tr("Send &test to me"), "Ctrl+Shift+Return",
            self.tr("Send this message only to the profile's own test address"), "test-to-me",
        )
        self.act_cancel = self._action(
            "actionCancel", self.tr("&Cancel sending"), "Ctrl+.",
            self.tr("Stop the send in progress"), "cancel",
        )
        self.act_cancel.setEnabled(False)
        self.act_profiles = self._action(
            "actionProfiles", self.tr("&Profiles…"), "Ctrl+,",
            self.tr("Add, edit or remove profiles and their keys"), "settings",
        )
        self.act_filter_log = self._action(
            "actionFilterLog", self.tr("&Filter the log"), "Ctrl+Shift+F",
            self.tr("Jump to the response log's filter box"),
        )
        self.act_focus_body = self._action(
            "actionFocusBody", self.tr("Go to the &body"), "Ctrl+B",
            self.tr("Put the cursor in the body editor"),
        )
        self.act_about = self._action(
            "actionAbout", self.tr("&About Netcore Desktop"), None,
            self.tr("Version and where files are kept"),
        )

    def _build_profile_bar(self) -> None:
        bar = QToolBar(self.tr("Profile"))
        bar.setObjectName("profileBar")
        bar.setAccessibleName(self.tr("Profile bar"))
        bar.setMovable(False)
        bar.setFloatable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.profile_box = named(
            QComboBox(), "profileSelector", self.tr("Active profile"),
            self.tr("The account profile used to send"),
        )
        self.profile_box.setMinimumContentsLength(14)
        self.profile_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        label = QLabel(self.tr("  Profil&e "))
        label.setBuddy(self.profile_box)
        self.badge = named(QLabel(), "modeBadge", self.tr("Sending mode"))
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.endpoint_label = named(QLabel(), "endpointLabel", self.tr("Where sends go"))
        self.endpoint_label.setProperty("role", "hint")
        self.key_label = named(QLabel(), "keyStatus", self.tr("Key status"))
        self.settings_button = named(
            QPushButton(icon("settings"), self.tr("Profiles…")), "profilesButton",
            self.tr("Profiles"), self.act_profiles.toolTip(),
        )
        self.test_button = named(
            QPushButton(icon("test-to-me"), self.tr("Send test to me")), "sendTestButton",
            self.tr("Send test to me"), self.act_send_test.toolTip(),
        )
        self.send_button = named(
            QPushButton(icon("send"), self.tr("Send")), "sendButton", self.tr("Send"),
            self.act_send.toolTip(),
        )
        self.send_button.setMinimumWidth(110)
        bar.addWidget(label)
        bar.addWidget(self.profile_box)
        spacer_small = QWidget()
        spacer_small.setFixedWidth(8)
        bar.addWidget(spacer_small)
        bar.addWidget(self.badge)
        holder = QWidget()
        holder_layout = QHBoxLayout(holder)
        holder_layout.setContentsMargins(10, 0, 0, 0)
        holder_layout.addWidget(self.endpoint_label)
        holder_layout.addWidget(self.key_label)
        bar.addWidget(holder)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        bar.addWidget(self.settings_button)
        bar.addWidget(self.test_button)
        bar.addWidget(self.send_button)
        right = QWidget()
        right.setFixedWidth(6)
        bar.addWidget(right)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.profile_bar = bar

    def _build_layout(self) -> None:
        self.right_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.right_splitter.setObjectName("previewSplitter")
        self.right_splitter.addWidget(self.preview)
        self.right_splitter.addWidget(self.checks)
        self.right_splitter.setStretchFactor(0, 3)
        self.right_splitter.setStretchFactor(1, 1)
        self.right_splitter.setChildrenCollapsible(False)
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.setObjectName("mainSplitter")
        self.main_splitter.addWidget(self.form)
        self.main_splitter.addWidget(self.right_splitter)
        self.main_splitter.setStretchFactor(0, 5)
        self.main_splitter.setStretchFactor(1, 7)
        self.main_splitter.setChildrenCollapsible(False)
        self.main_splitter.setSizes([560, 840])
        self.right_splitter.setSizes([640, 230])
        self.checks.setMinimumWidth(200)
        self.setCentralWidget(self.main_splitter)
        self.log_dock = QDockWidget(self.tr("Response log"), self)
        self.log_dock.setObjectName("responseLogDock")
        self.log_dock.setAccessibleName(self.tr("Response log"))
        self.log_dock.setWidget(self.log_view)
        self.log_dock.setTitleBarWidget(QWidget())
        self.log_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        # The dock's own toggle action stays in step with it (a separate checkable action
        # fed from visibilityChanged would hide the dock whenever it is merely not shown yet).
        self.act_toggle_log = self.log_dock.toggleViewAction()
        self.act_toggle_log.setObjectName("actionToggleLog")
        self.act_toggle_log.setText(self.tr("Response &log"))
        self.act_toggle_log.setShortcut(QKeySequence("Ctrl+L"))
        self.act_toggle_log.setToolTip(
            with_shortcut(self.tr("Show or hide the response log"), "Ctrl+L")
        )
        self.addAction(self.act_toggle_log)
        self.resizeDocks([self.log_dock], [210], Qt.Orientation.Vertical)
        self.status_keyring = named(QLabel(), "keyringStatus", self.tr("Where keys are kept"))
        self.status_keyring.setProperty("role", "hint")
        self.statusBar().addPermanentWidget(self.status_keyring)
        self.statusBar().setObjectName("statusBar")
        # Tab order across the big parts: profile bar, form, preview, checks, log.
        QWidget.setTabOrder(self.profile_box, self.settings_button)
        QWidget.setTabOrder(self.settings_button, self.test_button)
        QWidget.setTabOrder(self.test_button, self.send_button)
        QWidget.setTabOrder(self.send_button, self.form.sender_email)
        QWidget.setTabOrder(self.form.amp, self.preview.recipient)
        QWidget.setTabOrder(self.preview.remote_button, self.checks.list)
        QWidget.setTabOrder(self.checks.list, self.log_view.filter)

    def _build_menus(self) -> None:
        menu = self.menuBar()
        menu.setObjectName("menuBar")
        file_menu = menu.addMenu(self.tr("&File"))
        for action in (self.act_new, self.act_open, self.act_save, self.act_save_as):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.act_sample)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        send_menu = menu.addMenu(self.tr("&Send"))
        for action in (self.act_send, self.act_send_test, self.act_cancel):
            send_menu.addAction(action)
        view_menu = menu.addMenu(self.tr("&View"))
        for action in (self.act_toggle_log, self.act_filter_log, self.act_focus_body):
            view_menu.addAction(action)
        settings_menu = menu.addMenu(self.tr("Setti&ngs"))
        settings_menu.addAction(self.act_profiles)
        help_menu = menu.addMenu(self.tr("&Help"))
        help_menu.addAction(self.act_about)

    def _connect(self) -> None:
        c = self.controller
        c.draft_changed.connect(self._on_draft_changed)
        c.selection_changed.connect(self._on_selection_changed)
        c.remote_images_changed.connect(self._on_remote_images_changed)
        self.form.status_message.connect(self._status)
        self.preview.recipient_selected.connect(c.select_envelope)
        self.preview.remote_images_toggled.connect(c.set_allow_remote_images)
        self.preview.link_requested.connect(self._open_link)
        self.preview.shown.connect(self._on_preview_shown)
        self.checks.field_activated.connect(self._jump_to_field)
        self.log_view.status_message.connect(self._status)
        self.renderer.frame_ready.connect(self._on_frame)
        self.renderer.details_ready.connect(self._on_details)
        self._display_timer = QTimer(self)
        self._display_timer.setSingleShot(True)
        self._display_timer.setInterval(PREVIEW_DEBOUNCE_MS)
        self._display_timer.timeout.connect(self._on_display_due)
        w = self.worker.worker
        w.job_started.connect(self._on_job_started)
        w.job_needs_confirmation.connect(self._on_needs_confirmation)
        w.job_finished.connect(self._on_job_finished)
        w.secrets_ready.connect(self._on_secrets_ready)
        w.key_status.connect(self._on_key_status)
        w.sandbox_ready.connect(self._on_sandbox_ready)
        self.profile_box.currentIndexChanged.connect(self._on_profile_picked)
        self.send_button.clicked.connect(self._on_send_button)
        self.test_button.clicked.connect(self.send_test)
        self.settings_button.clicked.connect(self.open_profiles)
        self.act_send.triggered.connect(self._on_send_button)
        self.act_send_test.triggered.connect(self.send_test)
        self.act_cancel.triggered.connect(self.cancel_send)
        self.act_new.triggered.connect(self.new_draft)
        self.act_open.triggered.connect(self.open_draft)
        self.act_save.triggered.connect(self.save_draft)
        self.act_save_as.triggered.connect(self.save_draft_as)
        self.act_sample.triggered.connect(self.load_sample)
        self.act_quit.triggered.connect(self.close)
        self.act_profiles.triggered.connect(self.open_profiles)
        self.act_filter_log.triggered.connect(self._focus_log_filter)
        self.act_focus_body.triggered.connect(self._focus_body)
        self.act_about.triggered.connect(self._about)

    # --- profiles ---------------------------------------------------------------------------

    @property
    def _store(self) -> ProfileStore:
        if self._store_given is None:
            from netcore_desktop.core.profiles import ProfileStore

            self._store_given = ProfileStore()
        return self._store_given

    def _load_profiles(self, wanted: str | None) -> None:
        from netcore_desktop.core.profiles import ProfileFileError

        try:
            self._profiles = self._store.list()
            last = self._store.last_used()
        except ProfileFileError as exc:
            self._profiles, last = [], None
            self._profile_error = str(exc)
        name = wanted or last or (self._profiles[0].name if self._profiles else None)
        self._fill_profile_box(name)

    def _fill_profile_box(self, selected: str | None) -> None:
        self.profile_box.blockSignals(True)
        self.profile_box.clear()
        for profile in self._profiles:
            self.profile_box.addItem(profile.name, profile.name)
        if not self._profiles:
            self.profile_box.addItem(self.tr("(no profile yet)"), None)
        index = self.profile_box.findData(selected) if selected else 0
        self.profile_box.setCurrentIndex(max(0, index))
        self.profile_box.blockSignals(False)
        self._set_profile(self._profile_named(self.profile_box.currentData()))

    def _profile_named(self, name: object) -> Profile | None:
        for profile in self._profiles:
            if profile.name == name:
                return profile
        return None

    @property
    def profile(self) -> Profile | None:
        """The active profile."""
        return self._profile

    def _on_profile_picked(self, _index: int) -> None:
        from netcore_desktop.core.profiles import ProfileFileError

        profile = self._profile_named(self.profile_box.currentData())
        self._set_profile(profile)
        if profile is not None:
            try:
                self._store.set_last_used(profile.name)
            except (KeyError, OSError, ProfileFileError) as exc:
                log.warning("could not remember the last profile: %s", exc)

    def _set_profile(self, profile: Profile | None) -> None:
        self._profile = profile
        if profile is None:
            self.badge.setText(self.tr("NO PROFILE"))
            self.badge.setProperty("mode", "none")
            self.badge.setToolTip(self.tr("Add a profile (Settings → Profiles) to send"))
            self.endpoint_label.setText("")
            self.key_label.setText("")
        else:
            live = is_live(profile)
            self.badge.setText(self.tr("LIVE") if live else self.tr("SANDBOX"))
            self.badge.setProperty("mode", "live" if live else "sandbox")
            self.badge.setToolTip(
                self.tr("Sends go to Netcore and cost credits")
                if live
                else self.tr("Sends go to the offline sandbox on this computer: nothing is "
                             "delivered and no credits are spent")
            )
            self.endpoint_label.setText(profile.api_base_url() or profile.smtp_host)
            self.key_label.setText("")
            self.worker.check_key(profile)
            self.controller.apply_sender_defaults(
                profile.sender_email, profile.sender_name, profile.reply_to
            )
            if profile.is_sandbox and self._started_up:
                self._ensure_sandbox()
        repolish(self.badge)
        emit(self.profile_changed, profile.name if profile else "")
        self._request_render(immediate=True)

    def _ensure_sandbox(self) -> None:
        if not self._sandbox_requested:
            self._sandbox_requested = True
            self._status(self.tr("Starting the offline sandbox…"))
            self.worker.start_sandbox()

    def _on_sandbox_ready(self, ready: SandboxReady) -> None:
        if self._ready_after_sandbox:
            self._ready_after_sandbox = False
            QTimer.singleShot(0, self._emit_ready)
        if ready.profile is None:
            self._sandbox_requested = False
            QMessageBox.warning(
                self, self.tr("Sandbox"),
                self.tr("The offline sandbox could not start: {error}").format(error=ready.error),
            )
            return
        self._status(
            self.tr("Offline sandbox running at {url}: sends stay on this computer.").format(
                url=ready.base_url
            )
        )
        self._replace_profile(ready.profile)

    def _replace_profile(self, profile: Profile) -> None:
        self._profiles = [p for p in self._profiles if p.name != profile.name] + [profile]
        self._profiles.sort(key=lambda p: (p.name.casefold(), p.name))
        self._fill_profile_box(profile.name)
        from netcore_desktop.core.profiles import ProfileFileError

        with contextlib.suppress(KeyError, OSError, ProfileFileError):
            self._store.set_last_used(profile.name)

    def reload_profiles(self, selected: str | None = None) -> None:
        """Re-read the profiles file (after the profiles dialog changed it)."""
        current = selected or (self._profile.name if self._profile else None)
        self._load_profiles(current)

    def _on_key_status(self, status: KeyStatus) -> None:
        if self._profile is None or status.profile != self._profile.name:
            return
        if status.has_secret:
            self.key_label.setText("")
            self.key_label.setProperty("state", "ok")
        else:
            self.key_label.setText(
                status.message or self.tr("· no key stored: open Profiles to add it")
            )
            self.key_label.setProperty("state", "missing")
        repolish(self.key_label)

    def _on_secrets_ready(self, status: SecretsStatus) -> None:
        # The worker has imported the keyring module by now, so this costs nothing; keys
        # are only ever loaded by the worker, after this point.
        from netcore_desktop.core.secrets import install_redaction

        install_redaction()
        self._secrets_status = status
        self.status_keyring.setText(
            self.tr("Keys: system keyring") if status.usable else self.tr("Keys: this session only")
        )
        self.status_keyring.setToolTip(status.message)
        if not status.usable:
            self._status(status.message, 15000)

    @property
    def secrets_status(self) -> SecretsStatus | None:
        """Where keys are kept (known once the worker opened the keyring)."""
        return self._secrets_status

    def open_profiles(self) -> None:
        """Open the profiles dialog."""
        from netcore_desktop.ui.profiles_dialog import ProfilesDialog

        dialog = ProfilesDialog(
            self._store, self.worker, self._secrets_status,
            self._profile.name if self._profile else None, self,
        )
        dialog.exec()
        self.reload_profiles(dialog.selected_name())

    # --- drafts -------------------------------------------------------------------------------

    def _load_first_draft(self, restore: bool, use_sample: bool) -> None:
        restored = self.autosaver.restore() if restore else None
        has_content = restored is not None and bool(
            restored[0].body.strip() or restored[0].subject.strip() or restored[0].envelopes
        )
        if restored is not None and has_content:
            draft, path, allow_remote = restored
            self.controller.load(draft, path)
            self.controller.set_allow_remote_images(allow_remote)
            self._saved_draft = draft if path is not None else None
            self._status(self.tr("Restored the draft you were working on."))
        elif use_sample:
            self.load_sample()
        else:
            self.controller.load(Draft())
            self._saved_draft = self.controller.draft_to_keep()
        if self._profile is not None:
            p = self._profile
            self.controller.apply_sender_defaults(p.sender_email, p.sender_name, p.reply_to)

    def load_sample(self) -> None:
        """Load the sample welcome draft."""
        draft = sample_draft()
        if draft is None:
            return
        self.controller.load(draft)
        self._saved_draft = None
        if self._profile is not None:
            p = self._profile
            self.controller.apply_sender_defaults(p.sender_email, p.sender_name, p.reply_to)
        self._update_title()

    def _modified(self) -> bool:
        draft = self.controller.draft_to_keep()
        if self._saved_draft is not None:
            return draft != self._saved_draft
        return bool(draft.body.strip() or draft.subject.strip())

    def _confirm_discard(self) -> bool:
        if not self._modified():
            return True
        answer = QMessageBox.question(
            self, self.tr("Replace the draft?"),
            self.tr("The current draft has changes that are not saved to a file. "
                    "Replace it anyway?"),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        return answer == QMessageBox.StandardButton.Yes

    def new_draft(self) -> None:
        """Start an empty draft (after asking, when the current one has unsaved changes)."""
        if not self._confirm_discard():
            return
        self.controller.load(Draft())
        self._saved_draft = self.controller.draft_to_keep()
        if self._profile is not None:
            p = self._profile
            self.controller.apply_sender_defaults(p.sender_email, p.sender_name, p.reply_to)
        self._update_title()

    def open_draft(self, path: Path | None = None) -> bool:
        """Open a draft file (asks for one when ``path`` is not given)."""
        if path is None:
            if not self._confirm_discard():
                return False
            name, _ = QFileDialog.getOpenFileName(
                self, self.tr("Open draft"), str(Path.home()),
                self.tr("Netcore drafts (*.json);;All files (*)"),
            )
            if not name:
                return False
            path = Path(name)
        try:
            draft = draft_from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            QMessageBox.warning(
                self, self.tr("Open draft"),
                self.tr("{name} could not be opened: {error}").format(name=path.name, error=exc),
            )
            return False
        self.controller.load(draft, path)
        self._saved_draft = draft
        self._update_title()
        self._status(self.tr("Opened {name}.").format(name=path.name))
        return True

    def save_draft(self) -> bool:
        """Save to the draft's file (asks for a name the first time)."""
        path = self.controller.path
        if path is None:
            return self.save_draft_as()
        return self._save_to(path)

    def save_draft_as(self, path: Path | None = None) -> bool:
        """Save the draft under a new name."""
        if path is None:
            suggestion = str(Path.home() / "draft.json")
            name, _ = QFileDialog.getSaveFileName(
                self, self.tr("Save draft"), suggestion,
                self.tr("Netcore drafts (*.json);;All files (*)"),
            )
            if not name:
                return False
            path = Path(name)
            if not path.suffix:
                path = path.with_suffix(".json")
        return self._save_to(path)

    def _save_to(self, path: Path) -> bool:
        draft = self.controller.draft_to_keep()
        data = (json.dumps(draft_to_dict(draft), indent=2, ensure_ascii=False) + "\n").encode()
        try:
            _write_atomically(path, data)
        except OSError as exc:
            QMessageBox.warning(
                self, self.tr("Save draft"),
                self.tr("{name} could not be saved: {error}").format(name=path.name, error=exc),
            )
            return False
        self.controller.set_path(path)
        self._saved_draft = draft
        self._update_title()
        self._status(self.tr("Saved {name}.").format(name=path.name))
        self.autosaver.save_now()
        return True

    def _update_title(self) -> None:
        path = self.controller.path
        name = path.name if path is not None else self.tr("Untitled draft")
        mark = "*" if self._modified() else ""
        self.setWindowTitle(self.tr("{draft} — Netcore Desktop").format(draft=name + mark))

    # --- preview -------------------------------------------------------------------------------

    def _target(self) -> PreviewTarget:
        p = self._profile
        if p is None:
            return PreviewTarget()
        return PreviewTarget(p.api_version, is_live(p), p.api_base_url(), p.name)

    def _on_draft_changed(self, _draft: Draft) -> None:
        self._server_problems = ()
        self.last_edit_at = time.perf_counter()
        self._request_render()
        self._update_title()

    def _on_remote_images_changed(self, allowed: bool) -> None:
        self.preview.set_allow_remote(allowed)
        self._request_render(immediate=True)

    def _on_selection_changed(self, _index: int) -> None:
        self._request_render(immediate=True)

    def _request_render(self, *, immediate: bool = False) -> None:
        """Start rendering now (in the preview thread); show it after the debounce."""
        self._generation += 1
        c = self.controller
        self._last_request = RenderRequest(
            self._generation, c.draft, c.selected_envelope, self._target(), time.perf_counter()
        )
        self.renderer.submit(self._last_request)
        self.preview.set_recipients(c.draft, c.selected_envelope)
        self._display_pending = True
        if immediate:
            self._display_timer.stop()
            self._on_display_due()
        else:
            self._display_timer.start()

    def _on_display_due(self) -> None:
        # Typing paused: the slower details (checks, text, request) are worth computing now.
        if self._last_request is not None:
            self.renderer.submit_details(self._last_request)
        frame = self._frame
        if frame is not None and frame.generation == self._generation:
            self._display_pending = False
            self.preview.show_frame(frame)
        # Otherwise the frame is still rendering: _on_frame shows it when it arrives.

    def _on_frame(self, frame: PreviewFrame) -> None:
        if self._frame is not None and frame.generation <= self._frame.generation:
            return
        self._frame = frame
        due = self._display_pending and not self._display_timer.isActive()
        if due and frame.generation == self._generation:
            self._display_pending = False
            self.preview.show_frame(frame)

    def _on_details(self, details: PreviewDetails) -> None:
        if details.generation < self._details_generation:
            return
        self._details_generation = details.generation
        self.preview.show_details(details)
        self._local_problems = details.problems
        self._show_problems()

    def _show_problems(self) -> None:
        self.checks.set_problems(self._server_problems + self._local_problems)

    def _on_preview_shown(self, _generation: int) -> None:
        self.last_shown_at = time.perf_counter()

    def _open_link(self, url: QUrl) -> None:
        # The same question (and refusal of other kinds of link) as every other preview.
        if open_link(self, url):
            self._status(self.tr("Opened {url}").format(url=url.toString()))

    def _jump_to_field(self, field: str, envelope: int, key: str) -> None:
        self.form.focus_field(field, None if envelope < 0 else envelope, key or None)

    # --- sending --------------------------------------------------------------------------------

    @property
    def sending(self) -> bool:
        """Whether a send is running."""
        return self._job_id is not None

    def _on_send_button(self) -> None:
        if self.sending:
            self.cancel_send()
        else:
            self.send()

    def send(self, *, confirm: bool = True) -> bool:
        """Check the draft and hand it to the worker (Ctrl+Enter)."""
        return self._start_send(self.controller.draft, "send", confirm)

    def send_test(self) -> bool:
        """Send the message only to the profile's test address, with the previewed values."""
        profile = self._profile
        if profile is None:
            self.open_profiles()
            return False
        address = profile.test_address
        if not address:
            address, ok = QInputDialog.getText(
                self, self.tr("Send test to me"),
                self.tr("Your own address (kept in the profile for next time):"),
            )
            address = address.strip()
            if not ok or not address:
                return False
            profile = replace(profile, test_address=address)
            from netcore_desktop.core.profiles import ProfileFileError

            try:
                self._store.save(profile)
            except (OSError, ProfileFileError) as exc:
                log.warning("could not save the test address: %s", exc)
            self._replace_profile(profile)
        draft = self.controller.draft
        index = self.controller.selected_envelope
        attributes = draft.envelopes[index].attributes if draft.envelopes else {}
        test = replace(
            draft, envelopes=(Envelope(to=(Address(address),), attributes=dict(attributes)),),
            bcc=(),
        )
        return self._start_send(test, "test", True)

    def _start_send(self, draft: Draft, kind: str, confirm: bool) -> bool:
        if self.sending:
            return False
        profile = self._profile
        if profile is None:
            QMessageBox.information(
                self, self.tr("Send"),
                self.tr("Add a profile first: the offline sandbox, or your Netcore account."),
            )
            self.open_profiles()
            return False
        job = self.worker.submit(profile, draft, confirm=confirm, kind=kind)
        if job is None:
            return False
        self._job_id = job.job_id
        self._set_sending(True)
        self._status(
            self.tr("Sending a test to {address}…").format(address=draft.envelopes[0].to[0].email)
            if kind == "test"
            else self.tr("Checking and sending…")
        )
        return True

    def cancel_send(self) -> None:
        """Cancel the send in progress."""
        if self._job_id is not None:
            self.worker.cancel(self._job_id)
            self._status(self.tr("Cancelling…"))

    def _set_sending(self, sending: bool) -> None:
        if sending:
            self.send_button.setText(self.tr("Cancel"))
            self.send_button.setIcon(icon("cancel"))
            self.send_button.setToolTip(self.act_cancel.toolTip())
            self.send_button.setAccessibleName(self.tr("Cancel sending"))
        else:
            self.send_button.setText(self.tr("Send"))
            self.send_button.setIcon(icon("send"))
            self.send_button.setToolTip(self.act_send.toolTip())
            self.send_button.setAccessibleName(self.tr("Send"))
        self.send_button.setProperty("sending", sending)
        repolish(self.send_button)
        self.test_button.setEnabled(not sending)
        self.act_send_test.setEnabled(not sending)
        self.act_cancel.setEnabled(sending)

    def _on_job_started(self, _job_id: int) -> None:
        pass

    def _on_needs_confirmation(self, request: JobNeedsConfirmation) -> None:
        if request.job_id != self._job_id or self._closing:
            self.worker.confirm(request.job_id, False)
            return
        parts = []
        if request.live:
            parts.append(
                self.tr("This goes to the LIVE account “{profile}”: {n} recipient address(es), "
                        "{credits} credit(s).").format(
                    profile=request.profile, n=request.recipients, credits=request.credits
                )
            )
        if request.warnings:
            parts.append(self.tr("Please look at these warnings first:"))
            parts.extend(f"• {p.message}" for p in request.warnings[:8])
            if len(request.warnings) > 8:
                parts.append(self.tr("…and {n} more.").format(n=len(request.warnings) - 8))
        parts.append(self.tr("Send now?"))
        box = QMessageBox(self)
        box.setObjectName("confirmSend")
        box.setIcon(QMessageBox.Icon.Warning if request.live else QMessageBox.Icon.Question)
        box.setWindowTitle(self.tr("Send?"))
        box.setText("\n\n".join(parts[:1]) + ("\n\n" + "\n".join(parts[1:]) if parts[1:] else ""))
        send = box.addButton(self.tr("Send"), QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        self.worker.confirm(request.job_id, box.clickedButton() is send)

    def _on_job_finished(self, finished: JobFinished) -> None:
        self.worker.forget(finished.job_id)
        for entry in finished.entries:
            self.log_model.add(entry)
        if finished.entries:
            self.log_view.filter.clear()
            self.log_view.select_newest()
        if finished.job_id == self._job_id:
            self._job_id = None
            self._set_sending(False)
        if finished.problems:
            self._local_problems = finished.problems
            self._show_problems()
            first = finished.problems[0]
            self._status(finished.meaning + " " + first.message, 15000)
        else:
            text = finished.meaning
            if finished.message_id:
                text += " " + self.tr("Message id {id}.").format(id=finished.message_id)
            self._status(text, 20000)
        from netcore_desktop.core.checks import Problem, Severity

        server = []
        for entry in finished.entries:
            for field, message in entry.errors:
                form_field, envelope = api_field_to_form(field)
                label = f"{field}: " if field else ""
                server.append(
                    Problem(form_field, Severity.ERROR,
                            self.tr("Netcore refused {label}{message}").format(
                                label=label, message=message),
                            envelope)
                )
        if server:
            self._server_problems = tuple(server)
            self._show_problems()
        if finished.error_code == "missing_key" and not self._closing:
            answer = QMessageBox.question(
                self, self.tr("No key"),
                finished.meaning + "\n\n" + self.tr("Open the profiles to add it now?"),
            )
            if answer == QMessageBox.StandardButton.Yes:
                self.open_profiles()
        emit(self.send_finished, finished)

    # --- small things ---------------------------------------------------------------------------

    def _status(self, text: str, timeout_ms: int = 10000) -> None:
        self.statusBar().showMessage(text, timeout_ms)

    def _focus_log_filter(self) -> None:
        self.log_dock.setVisible(True)
        self.log_view.filter.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.log_view.filter.selectAll()

    def _focus_body(self) -> None:
        self.form.body.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def _about(self) -> None:
        from netcore_desktop.core.paths import config_dir, data_dir

        QMessageBox.about(
            self, self.tr("About Netcore Desktop"),
            self.tr("Netcore Desktop {version}\n\nCompose, preview, send and resend email "
                    "through Netcore.\n\nProfiles: {config}\nHistory and drafts: {data}").format(
                version=__version__, config=config_dir(), data=data_dir()
            ),
        )

    # --- life cycle -------------------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        """Start the first-paint bookkeeping (in case no paint ever comes, a timer)."""
        super().showEvent(event)
        if not self._shown_once:
            self._shown_once = True
            QTimer.singleShot(500, self._after_first_show)

    def paintEvent(self, event: QPaintEvent) -> None:
        """After the first paint: load profiles, create the web view (start-up stays fast)."""
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            emit(self.first_painted)
            QTimer.singleShot(0, self._after_first_show)

    def _after_first_show(self) -> None:
        if self._shut or self._started_up:
            return
        self._started_up = True
        # The worker opens the keyring and the history now, not while the window is being
        # built: its imports would compete with the first paint for the interpreter lock.
        self.worker.start_up()
        self._load_profiles(self._wanted_profile)
        self.form.set_live()
        self.preview.create_web_view()
        self._add_support_tools()
        self.preview.set_allow_remote(self.controller.allow_remote_images)
        if self._profile_error:
            QMessageBox.warning(self, self.tr("Profiles"), self._profile_error)
        if self._start_sandbox or (self._profile is not None and self._profile.is_sandbox):
            # Usable once the sandbox answers: "ready" follows in _on_sandbox_ready.
            self._ready_after_sandbox = True
            self._ensure_sandbox()
            return
        if not self._profiles and not self._profile_error and self._offer_first_run:
            QTimer.singleShot(0, self._first_run)
        self._emit_ready()

    @staticmethod
    def _settle_memory() -> None:
        # Everything loaded at start-up lives as long as the window: moving it out of the
        # collector's reach keeps full collections (which pause every thread) short.
        gc.collect()
        gc.freeze()

    def _add_support_tools(self) -> None:
        """The history dock, CSV import and bulk jobs (after the first paint: they load the
        history browser and its threads, which the first paint does not need)."""
        try:
            from netcore_desktop.ui.support import SupportTools
        except ImportError:  # a trimmed build without the support tools
            log.info("support tools not available")
            return
        try:
            self.support = SupportTools(self)
        except Exception:  # the window must work without them
            log.exception("the support tools could not start")
            return
        # Tabbing a second dock beside the log resets the dock area's height.
        self.resizeDocks([self.log_dock], [210], Qt.Orientation.Vertical)

    def load_draft(self, draft: Draft) -> bool:
        """Open ``draft`` as the new draft (asks first when the current one has changes)."""
        if not self._confirm_discard():
            return False
        self.controller.load(draft)
        self._saved_draft = None
        self._update_title()
        return True

    def _emit_ready(self) -> None:
        emit(self.ready)
        QTimer.singleShot(2000, self._settle_memory)

    def _first_run(self) -> None:
        from netcore_desktop.ui.profiles_dialog import FirstRunDialog

        dialog = FirstRunDialog(self)
        if dialog.exec() != FirstRunDialog.DialogCode.Accepted:
            return
        if dialog.choice == FirstRunDialog.SANDBOX:
            self._ensure_sandbox()
            if self.controller.draft == Draft() or not self.controller.draft.body.strip():
                self.load_sample()
        else:
            self.open_profiles()

    @staticmethod
    def _settings() -> QSettings:
        """Window geometry only (everything else is in core settings files)."""
        from netcore_desktop.core.paths import config_dir

        return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)

    def _restore_geometry(self) -> None:
        settings = self._settings()
        geometry = settings.value("window/geometry")
        state = settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Save the draft and the window layout; the threads stop in :meth:`shutdown`."""
        self._closing = True
        settings = self._settings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        self.autosaver.flush()
        super().closeEvent(event)

    def shutdown(self) -> bool:
        """Stop every thread (bounded waits); safe to call twice. Returns False on timeout."""
        if self._shut:
            return not self.worker.running
        self._shut = True
        self._closing = True
        self._display_timer.stop()
        # Each step is guarded: one failing must not leave a thread running at exit.
        for step in (self.autosaver.close, self.renderer.shutdown):
            try:
                step()
            except Exception:
                log.exception("shutting down %s failed", step)
        support = getattr(self, "support", None)
        if support is not None:
            try:
                support.shutdown()
            except Exception:
                log.exception("stopping the support tools failed")
        stopped = self.worker.shutdown()
        renderer = self.preview.renderer
        cleanup = getattr(renderer, "cleanup", None)
        if callable(cleanup):
            cleanup()
        return stopped
