"""API keys and SMTP passwords: kept in the system keyring, and masked everywhere else.

:class:`SecretStore` is the only place the app keeps a key or password
(``shared/DESIGN.md``, "Keys"). It talks to the system keyring through :mod:`keyring`. When
the keyring is not usable — the ``fail`` or ``null`` backend, a plaintext or other file
backend, or a chain with nothing usable in it — the store holds secrets in memory for this
process only, never writes them anywhere, and says so in :attr:`SecretStore.status`.

Every secret the store reads or writes is registered with the process-wide redaction
registry, so :class:`RedactingFilter` (installed on the log handlers by
:func:`install_redaction`) and :func:`redact` mask it wherever it would otherwise appear:
logs, history, error messages, "copy as cURL".
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any, Final

import keyring
import keyring.backend
import keyring.backends.chainer
import keyring.errors

log = logging.getLogger(__name__)

#: Default keyring service name under which every secret of the app is stored.
SERVICE: Final = "netcore-desktop"

#: Secrets shorter than this are not added to the redaction registry: masking every "abc" in
#: every log line would garble the logs and protect nothing.
_MIN_REGISTERED_LEN: Final = 4
#: Secrets at least this long keep their first characters when masked, so a person can tell
#: which key was used; shorter ones are masked entirely.
_SHOW_PREFIX_FROM_LEN: Final = 12
_PREFIX_LEN: Final = 4
_MASK: Final = "…(masked)"

#: Backend modules that store secrets in files (plaintext or with a password prompt on the
#: terminal, which a desktop app cannot answer). keyrings.alt says of itself that its
#: backends are not recommended.
_FILE_BACKEND_MODULE_PREFIXES: Final = (
    "keyrings.alt",
    "keyrings.cryptfile",
    "keyring.backends.file",
)


class SecretStoreError(Exception):
    """The keyring failed; the message says what happened and what to do."""


# --- redaction -----------------------------------------------------------------------------

_registry_lock = threading.Lock()
_registry: set[str] = set()
#: Longest first, so a secret that contains another one is masked whole.
_registry_sorted: tuple[str, ...] = ()

#: Credentials in text the app did not get from the store (a pasted header, a cURL line).
_CREDENTIAL_PATTERNS: Final = (
    re.compile(r"(?i)(authorization\s*[:=]\s*[\"']?\s*bearer\s+)([^\s\"',;]+)"),
    re.compile(r"(?i)(\bapi[_-]?key[\"']?\s*[:=]\s*[\"']?)([^\s\"',;}&]+)"),
)


def mask_secret(secret: str) -> str:
    """``secret`` masked for display: its first 4 characters (long secrets only) + "…(masked)"."""
    if len(secret) >= _SHOW_PREFIX_FROM_LEN:
        return secret[:_PREFIX_LEN] + _MASK
    return _MASK


def register_secret(secret: str | None) -> None:
    """Add ``secret`` to the process-wide registry masked by :func:`redact` and the filter."""
    global _registry_sorted
    if not secret or len(secret) < _MIN_REGISTERED_LEN:
        return
    with _registry_lock:
        if secret in _registry:
            return
        _registry.add(secret)
        _registry_sorted = tuple(sorted(_registry, key=len, reverse=True))


def known_secrets() -> tuple[str, ...]:
    """The registered secrets (longest first). For redaction only; never show them."""
    return _registry_sorted


def redact(text: str, secrets: Iterable[str] | None = None, *, patterns: bool = True) -> str:
    """``text`` with every secret masked (see :func:`mask_secret`).

    ``secrets`` defaults to the process-wide registry. With ``patterns`` (the default),
    values of ``Authorization: Bearer …`` and ``api_key: …`` are masked too, whatever they are.
    """
    if not text:
        return text
    items = (
        known_secrets()
        if secrets is None
        else sorted({s for s in secrets if s}, key=len, reverse=True)
    )
    for secret in items:
        if secret in text:
            text = text.replace(secret, mask_secret(secret))
        # The same secret inside JSON text (a response body, a stored request) is escaped.
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
        if escaped != secret and escaped in text:
            text = text.replace(escaped, mask_secret(secret))
    if patterns:
        for pattern in _CREDENTIAL_PATTERNS:
            text = pattern.sub(_mask_match, text)
    return text


def _mask_match(match: re.Match[str]) -> str:
    value = match.group(2)
    if value.endswith(_MASK):
        return match.group(0)  # already masked
    return match.group(1) + mask_secret(value)


def _redact_record(record: logging.LogRecord) -> None:
    """Mask secrets in ``record``'s message, traceback and stack text, in place.

    A record without secrets is left exactly as it was (its ``args`` included).
    """
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: let the handler report it as usual
        return
    redacted = redact(message)
    if redacted != message:
        record.msg = redacted
        record.args = None
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        masked = redact(text)
        if masked != text:
            # Formatters use exc_text when it is set instead of formatting exc_info again.
            record.exc_text = masked
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


class RedactingFilter(logging.Filter):
    """A logging filter that masks every registered secret in each record it sees.

    Attach it to handlers (a filter on a logger does not see records propagated from child
    loggers); :func:`install_redaction` does that for the root logger's handlers.
    """

    #: The registry is process-wide; these give it a place on the class too.
    register = staticmethod(register_secret)
    known = staticmethod(known_secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message, exception and stack text with secrets masked."""
        _redact_record(record)
        return True


_factory_lock = threading.Lock()
_factory_installed = False


def _install_record_factory() -> None:
    """Mask secrets as each record is made, for handlers added after install_redaction()."""
    global _factory_installed
    with _factory_lock:
        if _factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _factory_installed = True


def install_redaction(logger: logging.Logger | None = None) -> RedactingFilter:
    """Mask secrets in every log record from now on; returns the handlers' filter.

    Attaches one :class:`RedactingFilter` to every handler of ``logger`` (default: root),
    and wraps the process's log record factory so that records reaching handlers added
    later (a log window, a file opened afterwards) are masked too. Safe to call again: a
    handler never gets two filters.
    """
    _install_record_factory()
    target = logger if logger is not None else logging.getLogger()
    flt: RedactingFilter | None = None
    for handler in target.handlers:
        for existing in handler.filters:
            if isinstance(existing, RedactingFilter):
                flt = existing
    if flt is None:
        flt = RedactingFilter()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt


# --- the keyring -----------------------------------------------------------------------------


def _backend_label(backend: Any) -> str:
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def _unusable_reason(backend: Any) -> str | None:
    """Why ``backend`` must not hold secrets, or ``None`` when it may."""
    cls = type(backend)
    module = cls.__module__
    qualname = f"{module}.{cls.__qualname__}".lower()
    if module == "keyring.backends.fail":
        return "no keyring service was found"
    if module == "keyring.backends.null":
        return "the keyring is switched off"
    if module.startswith(_FILE_BACKEND_MODULE_PREFIXES) or "plaintext" in qualname:
        return "it keeps secrets in a file on disk"
    try:
        priority = float(backend.priority)
    except Exception:
        return "it is not available on this computer"
    if priority <= 0:
        return "it is not recommended by the keyring library"
    return None


def _choose_backend(backend: Any) -> tuple[Any | None, str]:
    """The backend to use (``None`` = session only) and a label naming what was found."""
    label = _backend_label(backend)
    if isinstance(backend, keyring.backends.chainer.ChainerBackend):
        # The chainer would fall through to a later backend (possibly a plaintext file) when
        # the first one fails, so pick the best usable one ourselves and talk only to it.
        chained = list(backend.backends)
        usable = [b for b in chained if _unusable_reason(b) is None]
        if not usable:
            names = ", ".join(_backend_label(b) for b in chained) or "nothing"
            return None, f"a chain of {names}"
        best = max(usable, key=lambda b: float(b.priority))
        return best, _backend_label(best)
    if _unusable_reason(backend) is not None:
        return None, label
    return backend, label


class SecretStore:
    """API keys and SMTP passwords per profile, in the system keyring or this session only.

    Entries are stored under ``service`` with the user name ``api-key:<profile>`` or
    ``smtp-password:<profile>``. Calls go over D-Bus on Linux: make them from a worker
    thread, not the GUI thread.
    """

    def __init__(self, service: str = SERVICE) -> None:
        self.service = service
        self._lock = threading.Lock()
        self._session: dict[str, str] = {}
        found = keyring.get_keyring()
        self._backend, label = _choose_backend(found)
        if self._backend is not None:
            self._status = f"Keys are kept in the system keyring ({label})."
        else:
            reason = (
                _unusable_reason(found)
                if not isinstance(found, keyring.backends.chainer.ChainerBackend)
                else "none of its backends can keep secrets safely"
            )
            self._status = (
                f"No usable keyring ({label}: {reason}): keys are kept for this session only "
                "and will be asked again next time."
            )
            log.warning("%s", self._status)

    # --- state ---------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Whether secrets outlive this process (kept in a real keyring)."""
        return self._backend is not None

    @property
    def status(self) -> str:
        """One sentence for the window: where keys are kept."""
        return self._status

    def fall_back_to_session(self, reason: str) -> None:
        """Stop using the keyring and keep secrets in memory for this session only.

        For when the keyring failed and the person chose to go on without it; ``reason`` is
        shown in :attr:`status`.
        """
        with self._lock:
            self._backend = None
            self._status = (
                f"The keyring failed ({reason}): keys are kept for this session only "
                "and will be asked again next time."
            )
        log.warning("%s", redact(self._status))

    # --- API key -------------------------------------------------------------------------

    def get_api_key(self, profile_name: str) -> str | None:
        """The API key of ``profile_name``, or ``None`` when none is stored."""
        return self._get("api-key", profile_name)

    def set_api_key(self, profile_name: str, key: str) -> None:
        """Store the API key of ``profile_name`` (surrounding whitespace is removed)."""
        self._set("api-key", profile_name, key.strip(), "API key")

    def delete_api_key(self, profile_name: str) -> None:
        """Forget the API key of ``profile_name`` (nothing happens when there is none)."""
        self._delete("api-key", profile_name)

    # --- SMTP password -------------------------------------------------------------------

    def get_smtp_password(self, profile_name: str) -> str | None:
        """The SMTP password of ``profile_name``, or ``None`` when none is stored."""
        return self._get("smtp-password", profile_name)

    def set_smtp_password(self, profile_name: str, password: str) -> None:
        """Store the SMTP password of ``profile_name`` (a trailing newline is removed)."""
        self._set("smtp-password", profile_name, password.rstrip("\r\n"), "SMTP password")

    def delete_smtp_password(self, profile_name: str) -> None:
        """Forget the SMTP password of ``profile_name`` (nothing happens when there is none)."""
        self._delete("smtp-password", profile_name)

    def delete_all(self, profile_name: str) -> None:
        """Forget every secret of ``profile_name`` (when the profile is removed)."""
        self.delete_api_key(profile_name)
        self.delete_smtp_password(profile_name)

    # --- plumbing ------------------------------------------------------------------------

    @staticmethod
    def _username(kind: str, profile_name: str) -> str:
        if not profile_name:
            raise ValueError("A profile name is needed to store its secrets.")
        return f"{kind}:{profile_name}"

    def _get(self, kind: str, profile_name: str) -> str | None:
        user = self._username(kind, profile_name)
        backend = self._backend
        if backend is None:
            with self._lock:
                value = self._session.get(user)
        else:
            value = self._call("read", profile_name, backend.get_password, self.service, user)
        if value is not None:
            register_secret(value)
        return value

    def _set(self, kind: str, profile_name: str, secret: str, what: str) -> None:
        if not secret:
            raise ValueError(f"The {what} is empty.")
        user = self._username(kind, profile_name)
        register_secret(secret)
        backend = self._backend
        if backend is None:
            with self._lock:
                self._session[user] = secret
            return
        self._call("store", profile_name, backend.set_password, self.service, user, secret)

    def _delete(self, kind: str, profile_name: str) -> None:
        user = self._username(kind, profile_name)
        with self._lock:
            self._session.pop(user, None)
        backend = self._backend
        if backend is None:
            return
        try:
            backend.delete_password(self.service, user)
        except keyring.errors.PasswordDeleteError:
            # Also raised for "no such password"; only a secret that is still there is a
            # real failure.
            if self._call("read", profile_name, backend.get_password, self.service, user):
                raise SecretStoreError(
                    f"The keyring refused to delete the secret of profile {profile_name!r}. "
                    "Remove it with your system's password manager (service "
                    f"{self.service!r})."
                ) from None
        except Exception as exc:
            raise self._error("delete", profile_name, exc) from exc

    def _call(self, action: str, profile_name: str, func: Any, *args: str) -> Any:
        try:
            return func(*args)
        except Exception as exc:
            raise self._error(action, profile_name, exc) from exc

    def _error(self, action: str, profile_name: str, exc: Exception) -> SecretStoreError:
        detail = redact(str(exc)).strip().rstrip(".!") or type(exc).__name__
        if isinstance(exc, keyring.errors.KeyringLocked):
            advice = (
                "The keyring is locked: unlock it (for example by logging in to your desktop "
                "session or opening your password manager) and try again."
            )
        elif isinstance(exc, keyring.errors.InitError | keyring.errors.NoKeyringError):
            advice = (
                "The keyring service could not be reached: check that it is running "
                "(on Linux, gnome-keyring or KWallet in your desktop session) and try again."
            )
        else:
            advice = (
                "The keyring service did not answer as expected: check that it is running "
                "and unlocked, then try again."
            )
        message = f"Could not {action} the secret of profile {profile_name!r}: {detail}. {advice}"
        log.error("%s", message)
        return SecretStoreError(message)
