"""Sending profiles: where and how to send, saved as JSON under the config directory.

A :class:`Profile` names a Netcore account setup: the region or a custom base URL
(``shared/netcore-api.md`` §1), the API generation (§2), the transport (HTTP API or the
SMTP relay, §7), sender defaults and network settings. It never holds a secret: the API key
and the SMTP password live in the keyring (:mod:`netcore_desktop.core.secrets`), looked up
by the profile's name.

:class:`ProfileStore` keeps the profiles in one file (``profiles.json`` in
:func:`netcore_desktop.core.paths.config_dir`). Writes are atomic (a temporary file, then
``os.replace``), and the previous file is kept as ``profiles.json.bak``. A file this version
cannot read (corrupted, or written by another version) raises :class:`ProfileFileError` and
is never overwritten silently: :meth:`ProfileStore.set_aside_unreadable` moves it aside
first, when the person agrees.
"""

from __future__ import annotations

import builtins
import contextlib
import ipaddress
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from netcore_desktop.core.contract import REGION_BASE_URLS, ApiVersion, Region
from netcore_desktop.core.paths import config_dir
from netcore_desktop.core.validation import email_problem

log = logging.getLogger(__name__)

#: ``format`` value of the profiles file.
FILE_FORMAT: Final = "netcore-desktop-profiles"
#: Version of the profiles file this code writes. Bump it when a field is added or changes
#: meaning, and add a step to ``_MIGRATIONS``.
FILE_VERSION: Final = 1

#: Keys that must never be stored in the profiles file, whatever wrote it.
_SECRET_KEYS: Final = frozenset(
    {"api_key", "apikey", "key", "password", "smtp_password", "secret", "token"}
)

#: Hosts that count as this computer, where plain HTTP or SMTP without TLS is acceptable.
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class Transport(StrEnum):
    """How a profile sends: Netcore's HTTP API or its SMTP relay (contract §2, §7)."""

    API = "api"
    SMTP = "smtp"


class SmtpSecurity(StrEnum):
    """Transport security for the SMTP relay (contract §7)."""

    #: Plain connection upgraded with STARTTLS (ports 587, 25, 2525).
    STARTTLS = "starttls"
    #: Implicit TLS from the first byte (port 465).
    TLS = "tls"
    #: No encryption: only accepted for a loopback host (the sandbox).
    NONE = "none"


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this computer (``localhost``, 127.0.0.0/8, ``::1``)."""
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Profile:
    """One account setup. Holds no secret: keys live in the keyring under ``name``."""

    name: str
    region: Region = Region.DEFAULT
    #: Used when ``region`` is :attr:`Region.CUSTOM` (e.g. the sandbox on loopback).
    base_url: str = ""
    api_version: ApiVersion = ApiVersion.V6
    transport: Transport = Transport.API
    sender_email: str = ""
    sender_name: str = ""
    reply_to: str = ""
    #: The person's own address, used by "Send test to me".
    test_address: str = ""
    smtp_host: str = "smtp.netcorecloud.net"
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_security: SmtpSecurity = SmtpSecurity.STARTTLS
    #: Proxy URL; empty means the system/environment proxy settings.
    proxy: str = ""
    #: Path of a CA bundle (PEM); empty means the default trust store.
    ca_bundle: str = ""
    timeout_s: float = 30.0
    #: True for a profile that talks to the offline sandbox.
    is_sandbox: bool = False

    def api_base_url(self) -> str:
        """The base URL requests go to: the region's host or the custom base URL."""
        if self.region is Region.CUSTOM:
            return self.base_url.strip().rstrip("/")
        return REGION_BASE_URLS[self.region]

    def validate(self) -> list[str]:
        """Problems with this profile, each a sentence for the settings dialog (empty = fine)."""
        problems: list[str] = []
        name = self.name.strip()
        if not name:
            problems.append("The profile needs a name.")
        elif name != self.name:
            problems.append("The profile name has spaces around it.")
        elif len(name) > 100:
            problems.append("The profile name is longer than 100 characters.")
        elif any(not ch.isprintable() for ch in name):
            problems.append("The profile name contains control characters.")

        if self.region is Region.CUSTOM:
            problems.extend(_url_problems(self.base_url))
        elif self.region is Region.LEGACY and self.api_version is not ApiVersion.V5:
            problems.append(
                "The legacy Pepipost host only serves API v5: choose v5 or another region."
            )

        if self.transport is Transport.API or self.sender_email:
            if not self.sender_email:
                problems.append("The sender address is empty.")
            else:
                problem = email_problem(self.sender_email)
                if problem:
                    problems.append(f"Sender: {problem}")
        for label, value in (("Reply-to", self.reply_to), ("Test address", self.test_address)):
            if value:
                problem = email_problem(value)
                if problem:
                    problems.append(f"{label}: {problem}")

        if self.transport is Transport.SMTP:
            if not self.smtp_host.strip():
                problems.append("The SMTP host is empty.")
            if not 1 <= self.smtp_port <= 65535:
                problems.append("The SMTP port must be between 1 and 65535.")
            if not self.smtp_user.strip():
                problems.append("The SMTP username is empty (it is on the Netcore dashboard).")
            if self.smtp_security is SmtpSecurity.NONE and not is_loopback_host(self.smtp_host):
                problems.append(
                    "SMTP without encryption would send the password in clear text: "
                    "use STARTTLS or TLS (only this computer's sandbox may go without)."
                )
            if self.smtp_security is SmtpSecurity.TLS and self.smtp_port in (25, 587, 2525):
                problems.append(f"Port {self.smtp_port} uses STARTTLS, not implicit TLS (465).")
            if self.smtp_security is SmtpSecurity.STARTTLS and self.smtp_port == 465:
                problems.append("Port 465 uses implicit TLS: choose TLS, not STARTTLS.")

        if self.proxy:
            parts = urlsplit(self.proxy)
            if parts.scheme.startswith("socks"):
                # httpx needs the optional socksio package for SOCKS, which is not shipped.
                problems.append("SOCKS proxies are not supported: use an HTTP(S) proxy.")
            elif parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(
                    "The proxy must be a URL such as http://proxy.example.org:3128 "
                    "(leave it empty to use the system's proxy)."
                )
        if self.ca_bundle and not Path(self.ca_bundle).expanduser().is_file():
            problems.append(f"The CA bundle {self.ca_bundle} does not exist.")
        if not 0 < self.timeout_s <= 600:
            problems.append("The timeout must be between 0 and 600 seconds.")
        return problems

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (enums as their string values)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, StrEnum):
                out[key] = str(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """A profile from :meth:`to_dict` output; raises ``ValueError`` when malformed.

        Unknown keys are ignored and secret-looking keys are dropped, so a hand-edited file
        with an ``api_key`` in it does not keep the key on disk after the next save.
        """
        known = {f.name for f in fields(cls)}
        dropped = sorted(k for k in data if k.lower() in _SECRET_KEYS)
        if dropped:
            log.warning(
                "Ignored %s in the profiles file: secrets belong in the keyring.",
                ", ".join(dropped),
            )
        values = {k: v for k, v in data.items() if k in known}
        if not isinstance(values.get("name"), str):
            raise ValueError("a profile without a name")
        try:
            converted: dict[str, Any] = {
                "name": values["name"],
                "region": Region(values.get("region", Region.DEFAULT)),
                "api_version": ApiVersion(values.get("api_version", ApiVersion.V6)),
                "transport": Transport(values.get("transport", Transport.API)),
                "smtp_security": SmtpSecurity(values.get("smtp_security", SmtpSecurity.STARTTLS)),
            }
            for key in (
                "base_url",
                "sender_email",
                "sender_name",
                "reply_to",
                "test_address",
                "smtp_host",
                "smtp_user",
                "proxy",
                "ca_bundle",
            ):
                if key in values:
                    if not isinstance(values[key], str):
                        raise ValueError(f"{key} is not text")
                    converted[key] = values[key]
            if "smtp_port" in values:
                if isinstance(values["smtp_port"], bool):
                    raise ValueError("smtp_port is not a number")
                converted["smtp_port"] = int(values["smtp_port"])
            if "timeout_s" in values:
                if isinstance(values["timeout_s"], bool):
                    raise ValueError("timeout_s is not a number")
                converted["timeout_s"] = float(values["timeout_s"])
            if "is_sandbox" in values:
                converted["is_sandbox"] = bool(values["is_sandbox"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"profile {values.get('name')!r}: {exc}") from exc
        return cls(**converted)


def _url_problems(url: str) -> list[str]:
    url = url.strip()
    if not url:
        return ["A custom region needs a base URL (e.g. http://127.0.0.1:8025 for the sandbox)."]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"The base URL {url!r} must start with https:// and name a host."]
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return [
            "Plain http:// would send the API key unencrypted: use https:// "
            "(only this computer's sandbox may use http://)."
        ]
    if parts.query or parts.fragment:
        return ["The base URL must not have a query (?…) or fragment (#…)."]
    return []


class ProfileFileError(Exception):
    """The profiles file cannot be read or written; the message says what to do."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


#: Upgrade steps for older files: ``_MIGRATIONS[n]`` turns a version-``n`` document into a
#: version ``n + 1`` one. Version 1 is the first, so there is nothing here yet.
_MIGRATIONS: dict[int, Any] = {}


class ProfileStore:
    """The saved profiles and which one was used last, in one JSON file.

    Thread-safe within a process. Every change re-reads the file first, so two windows (or a
    window and the command line) do not lose each other's profiles.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else config_dir() / "profiles.json"
        self._lock = threading.RLock()

    # --- reading -------------------------------------------------------------------------

    def _read(self) -> tuple[dict[str, Profile], str | None]:
        if not self.path.exists():
            return {}, None
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise ProfileFileError(
                f"Cannot read the profiles file {self.path}: {exc.strerror or exc}.", self.path
            ) from exc
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileFileError(
                f"The profiles file {self.path} is damaged ({exc}). It was left as it is: "
                "fix it by hand, or set it aside and start with no profiles.",
                self.path,
            ) from exc
        if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
            raise ProfileFileError(
                f"{self.path} is not a Netcore Desktop profiles file. It was left as it is: "
                "move it away, or set it aside and start with no profiles.",
                self.path,
            )
        version = doc.get("version")
        if not isinstance(version, int) or version < 1:
            raise ProfileFileError(
                f"The profiles file {self.path} has an unknown version ({version!r}). "
                "It was left as it is.",
                self.path,
            )
        if version > FILE_VERSION:
            raise ProfileFileError(
                f"The profiles file {self.path} was written by a newer version of Netcore "
                f"Desktop (file version {version}, this version reads {FILE_VERSION}). "
                "It was left as it is: update Netcore Desktop to use it.",
                self.path,
            )
        while version < FILE_VERSION:
            doc = _MIGRATIONS[version](doc)
            version += 1
        items = doc.get("profiles")
        if not isinstance(items, list):
            raise ProfileFileError(
                f"The profiles file {self.path} has no profile list. It was left as it is.",
                self.path,
            )
        profiles: dict[str, Profile] = {}
        for item in items:
            if not isinstance(item, dict):
                raise ProfileFileError(
                    f"The profiles file {self.path} holds an entry that is not a profile. "
                    "It was left as it is.",
                    self.path,
                )
            try:
                profile = Profile.from_dict(item)
            except ValueError as exc:
                raise ProfileFileError(
                    f"The profiles file {self.path} has a bad entry ({exc}). It was left as it is.",
                    self.path,
                ) from exc
            profiles[profile.name] = profile
        last = doc.get("last_used")
        return profiles, last if isinstance(last, str) and last in profiles else None

    def list(self) -> list[Profile]:
        """Every saved profile, sorted by name (case-insensitively)."""
        with self._lock:
            profiles, _ = self._read()
        return sorted(profiles.values(), key=lambda p: (p.name.casefold(), p.name))

    def names(self) -> builtins.list[str]:
        """The names of the saved profiles, in :meth:`list` order."""
        return [p.name for p in self.list()]

    def get(self, name: str) -> Profile:
        """The profile called ``name``; raises ``KeyError`` if there is none."""
        with self._lock:
            profiles, _ = self._read()
        try:
            return profiles[name]
        except KeyError:
            raise KeyError(name) from None

    def last_used(self) -> str | None:
        """The name of the profile used last, if it still exists."""
        with self._lock:
            return self._read()[1]

    # --- writing -------------------------------------------------------------------------

    def save(self, profile: Profile) -> None:
        """Add ``profile``, or replace the saved profile of the same name."""
        if not profile.name.strip():
            raise ValueError("A profile needs a name.")
        with self._lock:
            profiles, last = self._read()
            profiles[profile.name] = profile
            self._write(profiles, last)

    def rename(self, old: str, new: str) -> Profile:
        """Give a saved profile a new name (keys in the keyring are the caller's to move)."""
        with self._lock:
            profiles, last = self._read()
            if old not in profiles:
                raise KeyError(old)
            if new in profiles and new != old:
                raise ValueError(f"A profile called {new!r} already exists.")
            renamed = replace(profiles.pop(old), name=new)
            profiles[new] = renamed
            self._write(profiles, new if last == old else last)
            return renamed

    def remove(self, name: str) -> None:
        """Delete the profile ``name`` (``KeyError`` if there is none).

        Its keys stay in the keyring: call :class:`~netcore_desktop.core.secrets.SecretStore`
        to delete them too.
        """
        with self._lock:
            profiles, last = self._read()
            if name not in profiles:
                raise KeyError(name)
            del profiles[name]
            self._write(profiles, None if last == name else last)

    def set_last_used(self, name: str) -> None:
        """Remember ``name`` as the profile to open next time (``KeyError`` if unknown)."""
        with self._lock:
            profiles, last = self._read()
            if name not in profiles:
                raise KeyError(name)
            if last != name:
                self._write(profiles, name)

    def set_aside_unreadable(self) -> Path | None:
        """Move an unreadable profiles file to ``profiles.json.bak`` so a new one can start.

        Returns where the old file went, or ``None`` when the file was readable (then
        nothing is moved). Meant for after the person agreed to start afresh.
        """
        with self._lock:
            try:
                self._read()
                return None
            except ProfileFileError:
                pass
            backup = self._backup_path()
            os.replace(self.path, backup)
            log.warning("Moved the unreadable profiles file to %s.", backup)
            return backup

    def _backup_path(self) -> Path:
        return self.path.with_name(self.path.name + ".bak")

    def _write(self, profiles: Mapping[str, Profile], last: str | None) -> None:
        doc = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "last_used": last,
            "profiles": [
                profiles[n].to_dict() for n in sorted(profiles, key=lambda n: (n.casefold(), n))
            ],
        }
        data = (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            # One step of undo for a bad edit; the previous file was readable (it was just
            # read), so the backup is always a good file.
            shutil.copyfile(self.path, self._backup_path())
        fd, tmp_name = tempfile.mkstemp(
            prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        _fsync_dir(self.path.parent)


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable on POSIX; directories cannot be opened on Windows.
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
