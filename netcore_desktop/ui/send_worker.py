"""The worker thread: every network, keyring and SQLite call of the window happens here.

One :class:`SendWorker` ``QObject`` lives in a dedicated ``QThread`` (``shared/DESIGN.md``,
"Threads"). It owns the :class:`~netcore_desktop.core.secrets.SecretStore`, the
:class:`~netcore_desktop.core.history.History` and one
:class:`~netcore_desktop.core.sending.SendService` per profile (each with its keep-alive
HTTP client). The window talks to it only through :class:`WorkerHandle`, whose signals are
queued into the worker's thread; answers come back as frozen dataclasses through the
worker's signals, connected to bound methods of GUI objects (a lambda connected to a worker
signal would run in the worker thread).

Cancelling cannot wait for the worker's event loop (it is busy sending), so each job carries
a ``threading.Event`` that the window sets directly.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from netcore_desktop.core.contract import Region
from netcore_desktop.ui.qt_compat import emit

if TYPE_CHECKING:
    from netcore_desktop.core.checks import Problem
    from netcore_desktop.core.client import RequestRecord, RetryPolicy
    from netcore_desktop.core.history import History
    from netcore_desktop.core.profiles import Profile
    from netcore_desktop.core.secrets import SecretStore
    from netcore_desktop.core.sending import Prepared, SendService
    from netcore_desktop.sandbox import EmbeddedSandbox, SandboxConfig

log = logging.getLogger(__name__)

#: Name of the profile the embedded sandbox uses.
SANDBOX_PROFILE = "Sandbox"
#: Sender and test addresses of the sandbox profile (example.com is reserved for examples).
SANDBOX_SENDER = "hello@sandbox.example.com"
SANDBOX_TEST_ADDRESS = "me@sandbox.example.com"


# --- what goes in --------------------------------------------------------------------------


@dataclass(frozen=True)
class SendJob:
    """One send the window asked for."""

    job_id: int
    profile: Profile
    draft: Any  # core.message.Draft (kept Any so this module loads without the renderer)
    #: Ask the window before sending when there are warnings or credits are spent.
    confirm: bool = True
    #: "send" or "test" (a test to the profile's own address).
    kind: str = "send"
    cancel: threading.Event = field(default_factory=threading.Event, compare=False)


# --- what comes out ------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    """One request in the response log (or one send that could not start)."""

    time: datetime
    profile: str
    endpoint: str
    status_code: int | None
    outcome: str
    meaning: str
    message_id: str
    latency_ms: float | None
    recipients: tuple[str, ...]
    tokens: tuple[str, ...] = ()
    attempt_id: int | None = None
    attempts: int = 0
    request: RequestRecord | None = None
    response_body: str = ""
    #: (field, message) pairs parsed from an error answer.
    errors: tuple[tuple[str, str], ...] = ()
    job_id: int = 0


@dataclass(frozen=True)
class JobNeedsConfirmation:
    """The send is ready but the person should confirm (warnings, or credits on LIVE)."""

    job_id: int
    profile: str
    live: bool
    credits: int
    recipients: int
    warnings: tuple[Problem, ...]


@dataclass(frozen=True)
class JobFinished:
    """A send ended (sent, refused, failed, cancelled or could not start)."""

    job_id: int
    ok: bool
    outcome: str
    meaning: str
    entries: tuple[LogEntry, ...] = ()
    #: Blocking problems when the checks stopped the send.
    problems: tuple[Problem, ...] = ()
    #: A ``SendError`` code (``missing_key``, ``keyring``, ``config``, ``checks``) or "".
    error_code: str = ""
    message_id: str = ""
    tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecretsStatus:
    """Where keys are kept, for the window's status bar and the profiles dialog."""

    usable: bool
    message: str


@dataclass(frozen=True)
class KeyStatus:
    """Whether a profile has its key (or SMTP password) stored."""

    profile: str
    has_secret: bool
    message: str = ""


@dataclass(frozen=True)
class SecretSaved:
    """A key or password was stored (or could not be)."""

    profile: str
    kind: str
    ok: bool
    message: str


@dataclass(frozen=True)
class ConnectionTested:
    """The answer of "Test connection"."""

    profile: str
    ok: bool
    status_code: int | None
    message: str


@dataclass(frozen=True)
class SandboxReady:
    """The embedded sandbox runs; ``profile`` points at it."""

    profile: Profile | None
    base_url: str
    error: str = ""


# --- the worker ----------------------------------------------------------------------------


class SendWorker(QObject):
    """Lives in the worker thread; see the module docstring."""

    job_started = Signal(int)
    job_needs_confirmation = Signal(object)
    job_finished = Signal(object)
    secrets_ready = Signal(object)
    key_status = Signal(object)
    secret_saved = Signal(object)
    connection_tested = Signal(object)
    sandbox_ready = Signal(object)

    def __init__(self, retry: RetryPolicy | None = None) -> None:
        super().__init__()
        self._retry = retry
        self._secrets: SecretStore | None = None
        self._history: History | None = None
        self._services: dict[str, tuple[Profile, SendService]] = {}
        self._waiting: dict[int, tuple[SendJob, Prepared]] = {}
        self._sandbox: EmbeddedSandbox | None = None
        self._lock = threading.Lock()
        self._secrets_lock = threading.Lock()

    # --- owned resources (created in the worker thread on first use) ----------------------

    def secrets(self) -> SecretStore:
        """The keyring wrapper (its creation talks to D-Bus, hence in a worker thread).

        Thread-safe: the support tools' worker shares this one store, so a key kept for this
        session only is known to both.
        """
        with self._secrets_lock:
            if self._secrets is None:
                from netcore_desktop.core.secrets import SecretStore

                self._secrets = SecretStore()
            return self._secrets

    def history(self) -> History:
        """The SQLite history."""
        if self._history is None:
            from netcore_desktop.core.history import History

            self._history = History()
        return self._history

    def _service(self, profile: Profile) -> SendService:
        from netcore_desktop.core.sending import SendService

        known = self._services.get(profile.name)
        if known is not None and known[0] == profile:
            return known[1]
        if known is not None:
            known[1].close()
        service = SendService(profile, self.secrets(), self.history())
        self._services[profile.name] = (profile, service)
        return service

    # --- slots ---------------------------------------------------------------------------------

    @Slot()
    def start_up(self) -> None:
        """Open the keyring and the history early, so the first send is quick."""
        try:
            store = self.secrets()
            emit(self.secrets_ready, SecretsStatus(store.usable, store.status))
        except Exception as exc:  # no keyring library backend at all
            log.exception("keyring unavailable")
            emit(self.secrets_ready, SecretsStatus(False, str(exc)))
        try:
            self.history()
        except Exception:
            log.exception("the history could not be opened")

    @Slot(object)
    def check_key(self, profile: Profile) -> None:
        """Report whether ``profile`` has its secret stored."""
        try:
            if profile.transport == "smtp":
                value = self.secrets().get_smtp_password(profile.name) if profile.smtp_user else "-"
            else:
                value = self.secrets().get_api_key(profile.name)
            emit(self.key_status, KeyStatus(profile.name, bool(value)))
        except Exception as exc:
            emit(self.key_status, KeyStatus(profile.name, False, str(exc)))

    @Slot(str, str, str)
    def save_secret(self, profile_name: str, kind: str, value: str) -> None:
        """Store an API key (``kind`` "key") or SMTP password ("smtp") in the keyring."""
        try:
            store = self.secrets()
            if kind == "smtp":
                store.set_smtp_password(profile_name, value)
            else:
                store.set_api_key(profile_name, value)
            where = (
                self.tr("in the system keyring")
                if store.usable
                else self.tr("for this session only (no usable keyring)")
            )
            self._forget_service(profile_name)
            emit(self.secret_saved,
                SecretSaved(profile_name, kind, True, self.tr("Saved {where}.").format(where=where))
            )
        except Exception as exc:
            emit(self.secret_saved, SecretSaved(profile_name, kind, False, str(exc)))

    @Slot(str)
    def delete_secrets(self, profile_name: str) -> None:
        """Forget a removed profile's secrets."""
        try:
            self.secrets().delete_all(profile_name)
        except Exception:
            log.exception("could not delete the secrets of a removed profile")
        self._forget_service(profile_name)

    def _forget_service(self, profile_name: str) -> None:
        known = self._services.pop(profile_name, None)
        if known is not None:
            known[1].close()

    @Slot(object, str)
    def test_connection(self, profile: Profile, key: str) -> None:
        """Make one harmless authenticated call and explain the answer."""
        from netcore_desktop.core.client import ClientConfigError, NetcoreClient
        from netcore_desktop.core.contract import ApiVersion

        if profile.transport == "smtp":
            self._test_smtp(profile, key)
            return
        try:
            secret = key or self.secrets().get_api_key(profile.name) or ""
        except Exception as exc:
            emit(self.connection_tested, ConnectionTested(profile.name, False, None, str(exc)))
            return
        if not secret:
            emit(self.connection_tested,
                ConnectionTested(
                    profile.name, False, None,
                    self.tr("No API key is stored for this profile: paste it first."),
                )
            )
            return
        try:
            client = NetcoreClient(
                profile.api_base_url(), secret, api_version=profile.api_version,
                timeout=min(profile.timeout_s, 15.0), proxy=profile.proxy or None,
                verify=profile.ca_bundle or True,
            )
        except ClientConfigError as exc:
            emit(self.connection_tested, ConnectionTested(profile.name, False, None, str(exc)))
            return
        try:
            if profile.api_version is ApiVersion.V6:
                result = client.list_templates(page=1, per_page=1)
            else:
                today = datetime.now().date()
                result = client.events(startdate=today, enddate=today, limit=1)
        except Exception as exc:
            log.exception("connection test failed")
            emit(self.connection_tested, ConnectionTested(profile.name, False, None, str(exc)))
            return
        finally:
            client.close()
        if result.ok:
            message = self.tr("Connected: {host} accepted the key (HTTP {status}).").format(
                host=profile.api_base_url(), status=result.status_code
            )
        else:
            message = result.meaning
            if result.status_code is not None:
                message = self.tr("HTTP {status}: {meaning}").format(
                    status=result.status_code, meaning=result.meaning
                )
        emit(self.connection_tested,
            ConnectionTested(profile.name, result.ok, result.status_code, message)
        )

    def _test_smtp(self, profile: Profile, password: str) -> None:
        # The transport a send would use (its security rules and the profile's CA bundle),
        # connecting and logging in as a send would, then leaving without sending.
        from netcore_desktop.core.sending import SendError, smtp_transport_for

        try:
            secret = password or self.secrets().get_smtp_password(profile.name) or ""
            transport = smtp_transport_for(
                profile, secret if profile.smtp_user else "",
                timeout=min(profile.timeout_s, 15.0),
            )
            problem = transport.check_login()
        except SendError as exc:
            problem = str(exc)
        except Exception as exc:  # the keyring, or anything unforeseen: say it, stay up
            log.exception("SMTP connection test failed")
            problem = str(exc)
        if problem is None:
            if profile.smtp_user:
                message = self.tr("Connected: {host} accepted the login.")
            else:
                message = self.tr("Connected: {host} answered.")
            message = message.format(host=profile.smtp_host)
            emit(self.connection_tested, ConnectionTested(profile.name, True, None, message))
        else:
            emit(self.connection_tested, ConnectionTested(profile.name, False, None, problem))

    @Slot(object)
    def start_sandbox(self, config: SandboxConfig | None) -> None:
        """Start the embedded sandbox and point the sandbox profile at it."""
        from netcore_desktop.core.profiles import Profile, ProfileStore
        from netcore_desktop.sandbox import EmbeddedSandbox, SandboxConfig

        try:
            if self._sandbox is None:
                self._sandbox = EmbeddedSandbox(config or SandboxConfig()).start()
            sandbox = self._sandbox
            store = ProfileStore()
            try:
                old = store.get(SANDBOX_PROFILE)
            except KeyError:
                old = None
            profile = Profile(
                name=SANDBOX_PROFILE,
                region=Region.CUSTOM,
                base_url=sandbox.base_url,
                sender_email=old.sender_email if old and old.sender_email else SANDBOX_SENDER,
                sender_name=old.sender_name if old and old.sender_name else "Sandbox Sender",
                reply_to=old.reply_to if old else "",
                test_address=(
                    old.test_address if old and old.test_address else SANDBOX_TEST_ADDRESS
                ),
                api_version=old.api_version if old else Profile.api_version,
                is_sandbox=True,
            )
            store.save(profile)
            # The sandbox's key is a fixed local value; storing it keeps the profile usable
            # like any other (or for this session only when there is no keyring).
            self.secrets().set_api_key(SANDBOX_PROFILE, sandbox.api_key)
            self._forget_service(SANDBOX_PROFILE)
            emit(self.sandbox_ready, SandboxReady(profile, sandbox.base_url))
        except Exception as exc:
            log.exception("the embedded sandbox could not start")
            emit(self.sandbox_ready, SandboxReady(None, "", str(exc)))

    @Slot(object)
    def prepare_job(self, job: SendJob) -> None:
        """Prepare a send; send it at once, or ask the window first."""
        from netcore_desktop.core.sending import SendError

        emit(self.job_started, job.job_id)
        if job.cancel.is_set():
            emit(self.job_finished,
                JobFinished(
                    job.job_id, False, "cancelled", self.tr("Cancelled before it was sent.")
                )
            )
            return
        try:
            service = self._service(job.profile)
            prepared = service.prepare(job.draft)
        except SendError as exc:
            self._finish_error(job, exc.code, str(exc))
            return
        except Exception as exc:
            log.exception("preparing a send failed")
            self._finish_error(job, "internal", str(exc))
            return
        if prepared.blocking:
            blocking = tuple(p for p in prepared.problems if p.blocking)
            emit(self.job_finished,
                JobFinished(
                    job.job_id, False, "checks",
                    self.tr("Not sent: {n} problem(s) to fix first.").format(n=len(blocking)),
                    problems=blocking, error_code="checks",
                )
            )
            return
        live = not _is_sandbox(job.profile)
        if job.confirm and (prepared.warnings or live):
            with self._lock:
                self._waiting[job.job_id] = (job, prepared)
            emit(self.job_needs_confirmation,
                JobNeedsConfirmation(
                    job.job_id, job.profile.name, live, prepared.credits,
                    len(prepared.draft.recipients()), prepared.warnings,
                )
            )
            return
        self._send(job, prepared)

    @Slot(int, bool)
    def confirm_job(self, job_id: int, go: bool) -> None:
        """The person answered the confirmation of ``job_id``."""
        with self._lock:
            waiting = self._waiting.pop(job_id, None)
        if waiting is None:
            return
        job, prepared = waiting
        if not go or job.cancel.is_set():
            emit(self.job_finished,
                JobFinished(job_id, False, "cancelled", self.tr("Not sent."))
            )
            return
        self._send(job, prepared)

    def _send(self, job: SendJob, prepared: Prepared) -> None:
        from netcore_desktop.core.sending import SendError

        service = self._service(job.profile)
        try:
            if self._retry is not None and prepared.transport == "api":
                service.client().retry = self._retry
            outcome = service.send(prepared, cancel=job.cancel)
        except SendError as exc:
            self._finish_error(job, exc.code, str(exc))
            return
        except Exception as exc:
            log.exception("sending failed")
            self._finish_error(job, "internal", str(exc))
            return
        entries = []
        now = datetime.now().astimezone()
        for sent in outcome.requests:
            result = sent.result
            tokens = tuple(e.token for e in prepared.draft.envelopes)
            entries.append(
                LogEntry(
                    time=now,
                    profile=job.profile.name,
                    endpoint=service.endpoint,
                    status_code=result.status_code,
                    outcome=str(result.outcome),
                    meaning=result.meaning,
                    message_id=result.message_id or "",
                    latency_ms=result.latency_ms,
                    recipients=sent.recipients,
                    tokens=tokens,
                    attempt_id=sent.attempt_id,
                    attempts=result.attempts,
                    request=result.request,
                    response_body=result.response_body,
                    errors=tuple((e.field, e.message) for e in result.errors),
                    job_id=job.job_id,
                )
            )
        result = outcome.result
        emit(self.job_finished,
            JobFinished(
                job.job_id, outcome.ok, str(outcome.outcome), result.meaning,
                entries=tuple(entries), message_id=result.message_id or "",
                tokens=prepared.tokens,
            )
        )

    def _finish_error(self, job: SendJob, code: str, message: str) -> None:
        entry = LogEntry(
            time=datetime.now().astimezone(),
            profile=job.profile.name,
            endpoint=_endpoint(job.profile),
            status_code=None,
            outcome="not sent",
            meaning=message,
            message_id="",
            latency_ms=None,
            recipients=tuple(a.email for a in job.draft.recipients()),
            job_id=job.job_id,
        )
        emit(self.job_finished,
            JobFinished(job.job_id, False, "error", message, entries=(entry,), error_code=code)
        )

    @Slot()
    def shut_down(self) -> None:
        """Close clients, the history and the sandbox (in the worker thread)."""
        for _profile, service in self._services.values():
            try:
                service.close()
            except Exception:
                log.exception("closing a client failed")
        self._services.clear()
        if self._history is not None:
            try:
                self._history.close()
            except Exception:
                log.exception("closing the history failed")
            self._history = None
        self.stop_sandbox()

    def stop_sandbox(self) -> None:
        """Stop the embedded sandbox if it runs."""
        if self._sandbox is not None:
            try:
                self._sandbox.stop()
            except Exception:
                log.exception("stopping the sandbox failed")
            self._sandbox = None

    @property
    def sandbox(self) -> EmbeddedSandbox | None:
        """The embedded sandbox, when one runs (for tests and the benchmark)."""
        return self._sandbox


def _is_sandbox(profile: Profile) -> bool:
    from netcore_desktop.core.profiles import is_loopback_host

    if profile.is_sandbox:
        return True
    if profile.region is Region.CUSTOM and profile.transport == "api":
        from urllib.parse import urlsplit

        return is_loopback_host(urlsplit(profile.base_url).hostname or "")
    return False


def is_live(profile: Profile) -> bool:
    """Whether sends with ``profile`` reach the real service (and cost credits)."""
    return not _is_sandbox(profile)


def _endpoint(profile: Profile) -> str:
    from netcore_desktop.core.contract import SEND_PATHS

    if profile.transport == "smtp":
        return f"smtp://{profile.smtp_host}:{profile.smtp_port}"
    return profile.api_base_url() + SEND_PATHS[profile.api_version]


class WorkerHandle(QObject):
    """The window's side of the worker: signals into the thread, a clean shutdown."""

    _prepare = Signal(object)
    _confirm = Signal(int, bool)
    _check_key = Signal(object)
    _save_secret = Signal(str, str, str)
    _delete_secrets = Signal(str)
    _test_connection = Signal(object, str)
    _start_sandbox = Signal(object)
    _start_up = Signal()
    _shut_down = Signal()

    def __init__(self, retry: RetryPolicy | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("send-worker")
        self.worker = SendWorker(retry)
        self.worker.moveToThread(self._thread)
        self._prepare.connect(self.worker.prepare_job)
        self._confirm.connect(self.worker.confirm_job)
        self._check_key.connect(self.worker.check_key)
        self._save_secret.connect(self.worker.save_secret)
        self._delete_secrets.connect(self.worker.delete_secrets)
        self._test_connection.connect(self.worker.test_connection)
        self._start_sandbox.connect(self.worker.start_sandbox)
        self._start_up.connect(self.worker.start_up)
        self._shut_down.connect(self.worker.shut_down)
        self._thread.finished.connect(self.worker.deleteLater)
        self._next_id = 0
        self._jobs: dict[int, SendJob] = {}
        self._accepting = True
        self._thread.start()

    def start_up(self) -> None:
        """Open the keyring and the history in the worker (connect its signals first)."""
        emit(self._start_up)

    # --- requests ------------------------------------------------------------------------

    def submit(self, profile: Profile, draft: Any, *, confirm: bool = True,
               kind: str = "send") -> SendJob | None:
        """Queue a send; returns its job (``None`` once shutting down)."""
        if not self._accepting:
            return None
        self._next_id += 1
        job = SendJob(self._next_id, profile, draft, confirm=confirm, kind=kind)
        self._jobs[job.job_id] = job
        emit(self._prepare, job)
        return job

    def confirm(self, job_id: int, go: bool) -> None:
        """Answer a confirmation request."""
        emit(self._confirm, job_id, go)

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job, or every job still running."""
        jobs = list(self._jobs.values()) if job_id is None else [self._jobs.get(job_id)]
        for job in jobs:
            if job is not None:
                job.cancel.set()
                emit(self._confirm, job.job_id, False)

    def forget(self, job_id: int) -> None:
        """A job finished: drop the window's reference to it."""
        self._jobs.pop(job_id, None)

    @property
    def busy(self) -> bool:
        """Whether a job is queued or running."""
        return bool(self._jobs)

    def check_key(self, profile: Profile) -> None:
        """Ask whether ``profile`` has its secret."""
        emit(self._check_key, profile)

    def save_secret(self, profile_name: str, kind: str, value: str) -> None:
        """Store a key (``kind`` "key") or SMTP password ("smtp")."""
        emit(self._save_secret, profile_name, kind, value)

    def delete_secrets(self, profile_name: str) -> None:
        """Forget the secrets of a removed profile."""
        emit(self._delete_secrets, profile_name)

    def test_connection(self, profile: Profile, key: str = "") -> None:
        """Run "Test connection" (``key`` empty: use the stored one)."""
        emit(self._test_connection, profile, key)

    def start_sandbox(self, config: SandboxConfig | None = None) -> None:
        """Start the embedded sandbox in the worker thread."""
        emit(self._start_sandbox, config)

    # --- shutdown ------------------------------------------------------------------------

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Stop taking work, cancel what runs, close resources, stop the thread (bounded).

        Returns whether the thread stopped in time. Called from ``aboutToQuit``; safe to
        call twice.
        """
        if not self._thread.isRunning():
            return True
        self._accepting = False
        self.cancel()
        emit(self._shut_down)
        self._thread.quit()
        started = time.monotonic()
        stopped = bool(self._thread.wait(timeout_ms))
        if not stopped:
            # A request is still waiting for its answer. Killing the thread could corrupt
            # the history; run_app leaves the process without destroying it instead.
            log.error("the worker thread did not stop within %d ms", timeout_ms)
        log.debug("worker stopped in %.0f ms", (time.monotonic() - started) * 1000)
        return stopped

    @property
    def running(self) -> bool:
        """Whether the worker thread still runs."""
        return bool(self._thread.isRunning())
