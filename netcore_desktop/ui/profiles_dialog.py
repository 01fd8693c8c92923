"""The profiles dialog (add, edit, remove; keys into the keyring) and the first-run dialog.

Profiles are read and written with :class:`~netcore_desktop.core.profiles.ProfileStore` (a small
JSON file). Keys go straight to the worker thread, which stores them in the keyring; the key
field is cleared as soon as it is handed over, and is never written anywhere else. When the
keyring is unusable the dialog says so plainly: keys then last for this session only.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from netcore_desktop.core.contract import REGION_BASE_URLS, ApiVersion, Region
from netcore_desktop.core.profiles import (
    Profile,
    ProfileFileError,
    ProfileStore,
    SmtpSecurity,
    Transport,
)
from netcore_desktop.ui.common import icon, named
from netcore_desktop.ui.send_worker import (
    ConnectionTested,
    SecretSaved,
    SecretsStatus,
    WorkerHandle,
)

log = logging.getLogger(__name__)


class ProfilesDialog(QDialog):
    """Add, edit and remove profiles; store their keys; test the connection."""

    def __init__(
        self,
        store: ProfileStore,
        worker: WorkerHandle,
        secrets_status: SecretsStatus | None,
        current: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("profilesDialog")
        self.setAccessibleName(self.tr("Profiles"))
        self.setWindowTitle(self.tr("Profiles"))
        self.resize(860, 620)
        self._store = store
        self._worker = worker
        self._editing: str | None = None
        self._selected = current

        self.list = named(QListWidget(), "profileList", self.tr("Saved profiles"))
        self.add_button = named(
            QPushButton(icon("add"), self.tr("Add")), "addProfile", self.tr("Add a profile"),
            self.tr("Add a new profile"),
        )
        self.remove_button = named(
            QPushButton(icon("remove"), self.tr("Remove")), "removeProfile",
            self.tr("Remove the profile"), self.tr("Remove the selected profile and its keys"),
        )
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        left.addLayout(row)

        # --- the profile's fields ----------------------------------------------------------
        self.name = named(QLineEdit(), "profileName", self.tr("Profile name"))
        self.region = named(
            QComboBox(), "profileRegion", self.tr("Region"),
            self.tr("EU accounts use the EU host; a wrong region answers like a wrong key"),
        )
        self.region.addItem(self.tr("Default (emailapi.netcorecloud.net)"), Region.DEFAULT)
        self.region.addItem(self.tr("EU (apieu.netcorecloud.net)"), Region.EU)
        self.region.addItem(self.tr("Legacy Pepipost (api.pepipost.com, v5)"), Region.LEGACY)
        self.region.addItem(self.tr("Custom base URL…"), Region.CUSTOM)
        self.base_url = named(
            QLineEdit(), "profileBaseUrl", self.tr("Base URL"),
            self.tr("For a custom region, e.g. http://127.0.0.1:8025 for a sandbox"),
        )
        self.api_version = named(QComboBox(), "profileApiVersion", self.tr("API version"))
        for version in (ApiVersion.V6, ApiVersion.V5_1, ApiVersion.V5):
            self.api_version.addItem(str(version), version)
        self.transport = named(QComboBox(), "profileTransport", self.tr("Transport"))
        self.transport.addItem(self.tr("HTTP API"), Transport.API)
        self.transport.addItem(self.tr("SMTP relay"), Transport.SMTP)
        self.sender_email = named(QLineEdit(), "profileSenderEmail", self.tr("Sender address"))
        self.sender_name = named(QLineEdit(), "profileSenderName", self.tr("Sender name"))
        self.reply_to = named(QLineEdit(), "profileReplyTo", self.tr("Reply-to"))
        self.test_address = named(
            QLineEdit(), "profileTestAddress", self.tr("Your test address"),
            self.tr("Where “Send test to me” goes"),
        )
        self.proxy = named(
            QLineEdit(), "profileProxy", self.tr("Proxy"),
            self.tr("e.g. http://proxy.example.org:3128; empty uses the system proxy"),
        )
        self.ca_bundle = named(
            QLineEdit(), "profileCaBundle", self.tr("CA bundle"),
            self.tr("A PEM file for a company proxy that inspects TLS; empty for the default"),
        )
        self.timeout = named(QDoubleSpinBox(), "profileTimeout", self.tr("Timeout (seconds)"))
        self.timeout.setRange(1, 600)
        self.smtp_host = named(QLineEdit(), "profileSmtpHost", self.tr("SMTP host"))
        self.smtp_port = named(QSpinBox(), "profileSmtpPort", self.tr("SMTP port"))
        self.smtp_port.setRange(1, 65535)
        self.smtp_user = named(QLineEdit(), "profileSmtpUser", self.tr("SMTP user"))
        self.smtp_security = named(QComboBox(), "profileSmtpSecurity", self.tr("SMTP security"))
        for security, text in (
            (SmtpSecurity.STARTTLS, self.tr("STARTTLS (587, 25, 2525)")),
            (SmtpSecurity.TLS, self.tr("TLS (465)")),
            (SmtpSecurity.NONE, self.tr("None (this computer's sandbox only)")),
        ):
            self.smtp_security.addItem(text, security)

        form = QFormLayout()
        form.addRow(self.tr("&Name"), self.name)
        form.addRow(self.tr("Re&gion"), self.region)
        form.addRow(self.tr("&Base URL"), self.base_url)
        form.addRow(self.tr("API &version"), self.api_version)
        form.addRow(self.tr("&Transport"), self.transport)
        form.addRow(self.tr("Sender &address"), self.sender_email)
        form.addRow(self.tr("Sender na&me"), self.sender_name)
        form.addRow(self.tr("Rep&ly-to"), self.reply_to)
        form.addRow(self.tr("T&est address"), self.test_address)
        form.addRow(self.tr("Pro&xy"), self.proxy)
        form.addRow(self.tr("CA b&undle"), self.ca_bundle)
        form.addRow(self.tr("T&imeout (s)"), self.timeout)
        self.smtp_box = QGroupBox(self.tr("SMTP relay"))
        smtp_form = QFormLayout(self.smtp_box)
        smtp_form.addRow(self.tr("Host"), self.smtp_host)
        smtp_form.addRow(self.tr("Port"), self.smtp_port)
        smtp_form.addRow(self.tr("User"), self.smtp_user)
        smtp_form.addRow(self.tr("Security"), self.smtp_security)

        # --- secrets -----------------------------------------------------------------------
        self.keyring_label = named(QLabel(), "keyringNotice", self.tr("Where keys are kept"))
        self.keyring_label.setWordWrap(True)
        self._show_keyring(secrets_status)
        self.key = named(
            QLineEdit(), "apiKeyField", self.tr("API key"),
            self.tr("Paste the API key from the Netcore dashboard; it goes to the keyring"),
        )
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText(self.tr("paste the API key (stored in the keyring)"))
        self.save_key = named(
            QPushButton(self.tr("Save key")), "saveKey", self.tr("Save the API key"),
            self.tr("Store the key in the system keyring"),
        )
        self.smtp_password = named(QLineEdit(), "smtpPasswordField", self.tr("SMTP password"))
        self.smtp_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.smtp_password.setPlaceholderText(self.tr("SMTP password (not the API key)"))
        self.save_smtp = named(
            QPushButton(self.tr("Save password")), "saveSmtpPassword",
            self.tr("Save the SMTP password"),
        )
        self.secret_result = named(QLabel(), "secretResult", self.tr("Key saving result"))
        self.secret_result.setWordWrap(True)
        self.test_button = named(
            QPushButton(self.tr("Test connection")), "testConnection", self.tr("Test connection"),
            self.tr("Make one harmless call with this profile and explain the answer"),
        )
        self.test_result = named(QLabel(), "testResult", self.tr("Connection test result"))
        self.test_result.setWordWrap(True)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        secrets_box = QGroupBox(self.tr("Key and connection"))
        secrets_layout = QVBoxLayout(secrets_box)
        secrets_layout.addWidget(self.keyring_label)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key, 1)
        key_row.addWidget(self.save_key)
        secrets_layout.addLayout(key_row)
        smtp_row = QHBoxLayout()
        smtp_row.addWidget(self.smtp_password, 1)
        smtp_row.addWidget(self.save_smtp)
        secrets_layout.addLayout(smtp_row)
        secrets_layout.addWidget(self.secret_result)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)
        secrets_layout.addLayout(test_row)

        self.problems = named(QLabel(), "profileProblems", self.tr("Profile problems"))
        self.problems.setProperty("role", "fieldProblem")
        self.problems.setWordWrap(True)
        self.save_button = named(
            QPushButton(self.tr("Save profile")), "saveProfile", self.tr("Save the profile"),
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.setObjectName("profilesButtons")

        right = QVBoxLayout()
        right.addLayout(form)
        right.addWidget(self.smtp_box)
        right.addWidget(secrets_box)
        right.addWidget(self.problems)
        bottom = QHBoxLayout()
        bottom.addWidget(self.save_button)
        bottom.addStretch(1)
        bottom.addWidget(buttons)
        right.addLayout(bottom)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addLayout(right, 3)

        self.list.currentTextChanged.connect(self._on_pick)
        self.add_button.clicked.connect(self._add)
        self.remove_button.clicked.connect(self._remove)
        self.region.currentIndexChanged.connect(self._sync_enabled)
        self.transport.currentIndexChanged.connect(self._sync_enabled)
        self.save_button.clicked.connect(self.save_profile)
        self.save_key.clicked.connect(self._save_key)
        self.save_smtp.clicked.connect(self._save_smtp)
        self.test_button.clicked.connect(self._test)
        worker.worker.secret_saved.connect(self._on_secret_saved)
        worker.worker.connection_tested.connect(self._on_tested)
        self._reload(current)

    # --- list ------------------------------------------------------------------------------

    def selected_name(self) -> str | None:
        """The profile selected when the dialog closed."""
        return self._selected

    def _reload(self, select: str | None) -> None:
        try:
            names = self._store.names()
        except ProfileFileError as exc:
            QMessageBox.warning(self, self.tr("Profiles"), str(exc))
            names = []
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems(names)
        self.list.blockSignals(False)
        if select in names:
            self.list.setCurrentRow(names.index(select))
        elif names:
            self.list.setCurrentRow(0)
        else:
            self._fill(Profile(name=""))
            self._editing = None
        self._on_pick(self.list.currentItem().text() if self.list.currentItem() else "")

    def _on_pick(self, name: str) -> None:
        if not name:
            return
        try:
            profile = self._store.get(name)
        except (KeyError, ProfileFileError):
            return
        self._editing = name
        self._selected = name
        self._fill(profile)

    def _add(self) -> None:
        self.list.clearSelection()
        self._editing = None
        self._fill(Profile(name=""))
        self.name.setFocus()

    def _remove(self) -> None:
        if self._editing is None:
            return
        name = self._editing
        answer = QMessageBox.question(
            self, self.tr("Remove profile"),
            self.tr("Remove the profile “{name}” and forget its keys?").format(name=name),
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        try:
            self._store.remove(name)
        except (KeyError, ProfileFileError, OSError) as exc:
            QMessageBox.warning(self, self.tr("Remove profile"), str(exc))
            return
        self._worker.delete_secrets(name)
        self._selected = None
        self._reload(None)

    # --- fields ----------------------------------------------------------------------------

    def _fill(self, p: Profile) -> None:
        self.name.setText(p.name)
        self.name.setReadOnly(bool(p.name))
        self.name.setToolTip(
            self.tr("A saved profile keeps its name (its keys are stored under it)")
            if p.name else self.tr("A short name, e.g. “Production” or “EU account”")
        )
        self.region.setCurrentIndex(max(0, self.region.findData(p.region)))
        self.base_url.setText(p.base_url)
        self.api_version.setCurrentIndex(max(0, self.api_version.findData(p.api_version)))
        self.transport.setCurrentIndex(max(0, self.transport.findData(p.transport)))
        self.sender_email.setText(p.sender_email)
        self.sender_name.setText(p.sender_name)
        self.reply_to.setText(p.reply_to)
        self.test_address.setText(p.test_address)
        self.proxy.setText(p.proxy)
        self.ca_bundle.setText(p.ca_bundle)
        self.timeout.setValue(p.timeout_s)
        self.smtp_host.setText(p.smtp_host)
        self.smtp_port.setValue(p.smtp_port)
        self.smtp_user.setText(p.smtp_user)
        self.smtp_security.setCurrentIndex(max(0, self.smtp_security.findData(p.smtp_security)))
        self._is_sandbox = p.is_sandbox
        self.key.clear()
        self.smtp_password.clear()
        self.problems.clear()
        self.test_result.clear()
        self.secret_result.clear()
        self._sync_enabled()

    def _sync_enabled(self, *_args: object) -> None:
        custom = self.region.currentData() == Region.CUSTOM
        self.base_url.setEnabled(custom)
        if not custom:
            region = self.region.currentData()
            self.base_url.setPlaceholderText(REGION_BASE_URLS.get(region, ""))
        smtp = self.transport.currentData() == Transport.SMTP
        self.smtp_box.setVisible(smtp)
        self.smtp_password.setEnabled(smtp)
        self.save_smtp.setEnabled(smtp)

    def current_profile(self) -> Profile:
        """A profile built from the fields (not saved)."""
        return Profile(
            name=self.name.text().strip(),
            region=Region(self.region.currentData()),
            base_url=self.base_url.text().strip(),
            api_version=ApiVersion(self.api_version.currentData()),
            transport=Transport(self.transport.currentData()),
            sender_email=self.sender_email.text().strip(),
            sender_name=self.sender_name.text().strip(),
            reply_to=self.reply_to.text().strip(),
            test_address=self.test_address.text().strip(),
            smtp_host=self.smtp_host.text().strip(),
            smtp_port=self.smtp_port.value(),
            smtp_user=self.smtp_user.text().strip(),
            smtp_security=SmtpSecurity(self.smtp_security.currentData()),
            proxy=self.proxy.text().strip(),
            ca_bundle=self.ca_bundle.text().strip(),
            timeout_s=float(self.timeout.value()),
            is_sandbox=getattr(self, "_is_sandbox", False),
        )

    def save_profile(self) -> bool:
        """Validate and save the profile in the fields."""
        profile = self.current_profile()
        problems = profile.validate()
        if self._editing is None and profile.name in self._names():
            problems.append(self.tr("A profile with this name already exists."))
        if problems:
            self.problems.setText("\n".join(problems))
            return False
        try:
            self._store.save(profile)
            self._store.set_last_used(profile.name)
        except (OSError, ProfileFileError, ValueError) as exc:
            self.problems.setText(str(exc))
            return False
        self.problems.clear()
        self._selected = profile.name
        self._reload(profile.name)
        self.secret_result.setText(self.tr("Profile saved."))
        return True

    def _names(self) -> list[str]:
        try:
            return self._store.names()
        except ProfileFileError:
            return []

    # --- secrets and test --------------------------------------------------------------------

    def _show_keyring(self, status: SecretsStatus | None) -> None:
        if status is None:
            self.keyring_label.setText(self.tr("Checking the system keyring…"))
        elif status.usable:
            self.keyring_label.setText(status.message)
            self.keyring_label.setProperty("role", "hint")
        else:
            self.keyring_label.setText(
                self.tr("No usable keyring on this computer. A key you enter here is kept in "
                        "memory for this session only and is never written to disk; you will "
                        "be asked for it again next time.")
            )
            self.keyring_label.setToolTip(status.message)
            self.keyring_label.setProperty("role", "warningBar")

    def _ensure_saved(self) -> str | None:
        unsaved = self._editing is None or self._editing != self.name.text().strip()
        if unsaved and not self.save_profile():
            return None
        return self.name.text().strip()

    def _save_key(self) -> None:
        value = self.key.text().strip()
        if not value:
            self.secret_result.setText(self.tr("Paste the key first."))
            return
        name = self._ensure_saved()
        if name is None:
            return
        self.key.clear()
        self.secret_result.setText(self.tr("Saving the key…"))
        self._worker.save_secret(name, "key", value)

    def _save_smtp(self) -> None:
        value = self.smtp_password.text()
        if not value:
            self.secret_result.setText(self.tr("Type the SMTP password first."))
            return
        name = self._ensure_saved()
        if name is None:
            return
        self.smtp_password.clear()
        self.secret_result.setText(self.tr("Saving the password…"))
        self._worker.save_secret(name, "smtp", value)

    def _on_secret_saved(self, saved: SecretSaved) -> None:
        what = self.tr("Key") if saved.kind == "key" else self.tr("SMTP password")
        self.secret_result.setText(f"{what}: {saved.message}")

    def _test(self) -> None:
        profile = self.current_profile()
        problems = [p for p in profile.validate() if "name" not in p.lower()]
        if problems:
            self.test_result.setText("\n".join(problems))
            return
        if not profile.name:
            profile = replace(profile, name="(unsaved)")
        key = self.key.text().strip() if profile.transport is Transport.API else (
            self.smtp_password.text()
        )
        self.test_result.setText(self.tr("Testing…"))
        self.test_button.setEnabled(False)
        self._worker.test_connection(profile, key)

    def _on_tested(self, tested: ConnectionTested) -> None:
        self.test_button.setEnabled(True)
        mark = "✔ " if tested.ok else "✖ "
        self.test_result.setText(mark + tested.message)


class FirstRunDialog(QDialog):
    """Shown the first time, with no profile: the offline sandbox or a Netcore account."""

    SANDBOX = "sandbox"
    ACCOUNT = "account"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("firstRunDialog")
        self.setAccessibleName(self.tr("Welcome"))
        self.setWindowTitle(self.tr("Welcome to Netcore Desktop"))
        self.choice = ""
        text = QLabel(
            self.tr(
                "<h3>How would you like to start?</h3>"
                "<p><b>Offline sandbox</b>: a Netcore-compatible service on this computer. "
                "Nothing is delivered and no credits are spent; perfect for trying things "
                "out. A sample message is ready to send.</p>"
                "<p><b>Your Netcore account</b>: add its API key (kept in your system "
                "keyring) and region, then send for real.</p>"
            )
        )
        text.setWordWrap(True)
        self.sandbox_button = named(
            QPushButton(self.tr("Try the offline sandbox")), "firstRunSandbox",
            self.tr("Try the offline sandbox"),
        )
        self.account_button = named(
            QPushButton(self.tr("Add my Netcore account…")), "firstRunAccount",
            self.tr("Add my Netcore account"),
        )
        self.sandbox_button.setDefault(True)
        self.sandbox_button.clicked.connect(self._pick_sandbox)
        self.account_button.clicked.connect(self._pick_account)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.account_button)
        row.addWidget(self.sandbox_button)
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addLayout(row)
        self.resize(520, 260)

    def _pick_sandbox(self) -> None:
        self.choice = self.SANDBOX
        self.accept()

    def _pick_account(self) -> None:
        self.choice = self.ACCOUNT
        self.accept()
