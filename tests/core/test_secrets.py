"""Keys in the real system keyring, the session-only fallback, and masking keys everywhere.

Tests marked ``keyring`` talk to a real Secret Service: run them with ``bash tests/run.sh``,
which starts gnome-keyring in a private D-Bus session. Outside it they are skipped (with the
reason); inside it they must run.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.null
import pytest

from netcore_desktop.core.secrets import (
    RedactingFilter,
    SecretStore,
    install_redaction,
    mask_secret,
    redact,
    register_secret,
)

ROOT = Path(__file__).resolve().parents[2]


def _secret_service_problem() -> str | None:
    """Why no Secret Service can be used here, or ``None`` when one can."""
    try:
        from keyring.backends import SecretService

        backend = SecretService.Keyring()
        backend.priority  # noqa: B018 - raises when there is no reachable service
        backend.get_password("netcore-desktop-test-probe", "probe")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture
def restore_keyring() -> Iterator[None]:
    """Puts back whatever keyring backend was active before the test."""
    before = keyring.get_keyring()
    try:
        yield
    finally:
        keyring.set_keyring(before)


@pytest.fixture
def secret_service(restore_keyring: None) -> Iterator[str]:
    """A unique service name on the real Secret Service; every entry is removed afterwards."""
    problem = _secret_service_problem()
    if problem:
        if os.environ.get("NETCORE_IN_TEST_SESSION"):
            pytest.fail(f"tests/run.sh started no usable Secret Service: {problem}")
        pytest.skip(f"no Secret Service reachable ({problem}); run via bash tests/run.sh")
    from keyring.backends import SecretService

    keyring.set_keyring(SecretService.Keyring())
    service = f"netcore-desktop-test-{uuid.uuid4().hex[:10]}"
    yield service
    backend = SecretService.Keyring()
    for kind in ("api-key", "smtp-password"):
        for profile in ("Production", "Staging", "Sandbox"):
            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                backend.delete_password(service, f"{kind}:{profile}")


def _in_another_process(code: str, **env: str) -> str:
    """Run ``code`` in a fresh Python (same environment, so the same keyring); its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _files_containing(needle: str, *roots: Path) -> list[Path]:
    found = []
    for root in roots:
        if not root.exists():
            continue
        for path in root.rglob("*"):
            try:
                if path.is_file() and needle.encode() in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
    return found


def _scratch_dirs() -> list[Path]:
    """The throwaway HOME and XDG dirs of tests/run.sh (nothing outside it: a real HOME is
    not ours to scan)."""
    if not os.environ.get("NETCORE_IN_TEST_SESSION"):
        return []
    names = ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")
    return [Path(os.environ[n]) for n in names if os.environ.get(n)]


# --- the real Secret Service --------------------------------------------------------------


@pytest.mark.keyring
def test_keys_are_kept_in_the_system_keyring_across_processes(secret_service: str) -> None:
    store = SecretStore(secret_service)
    assert store.usable
    assert "system keyring" in store.status and "SecretService" in store.status

    store.set_api_key("Production", "  live-key-7c5e2d1f0a9b8c7d6e5f4a3b2c1d0e9f\n")
    store.set_smtp_password("Production", "smtp pass with spaces\n")
    store.set_api_key("Staging", "staging-key-000111222333444555")

    # What the next start of the app (or the command line) sees.
    seen = _in_another_process(
        f"""
        import json
        from netcore_desktop.core.secrets import SecretStore
        s = SecretStore({secret_service!r})
        print(json.dumps([s.usable, s.get_api_key("Production"),
                          s.get_smtp_password("Production"), s.get_api_key("Staging"),
                          s.get_smtp_password("Staging")]))
        """
    )
    assert json.loads(seen) == [
        True,
        "live-key-7c5e2d1f0a9b8c7d6e5f4a3b2c1d0e9f",  # whitespace from pasting removed
        "smtp pass with spaces",  # only the newline removed: spaces may be part of it
        "staging-key-000111222333444555",
        None,
    ]


@pytest.mark.keyring
def test_deleting_a_key_forgets_it_everywhere(secret_service: str) -> None:
    store = SecretStore(secret_service)
    store.set_api_key("Production", "live-key-to-be-deleted-0123456789")
    store.set_smtp_password("Production", "smtp-password-to-keep")
    store.delete_api_key("Production")
    store.delete_api_key("Production")  # deleting what is gone is not an error
    assert store.get_api_key("Production") is None
    assert store.get_smtp_password("Production") == "smtp-password-to-keep"
    seen = _in_another_process(
        f"""
        from netcore_desktop.core.secrets import SecretStore
        s = SecretStore({secret_service!r})
        print(s.get_api_key("Production"), s.get_smtp_password("Production"))
        """
    )
    assert seen == "None smtp-password-to-keep"
    store.delete_all("Production")
    assert store.get_smtp_password("Production") is None


@pytest.mark.keyring
def test_no_file_holds_the_key_in_clear(secret_service: str) -> None:
    key = f"cleartext-probe-{uuid.uuid4().hex}"
    SecretStore(secret_service).set_api_key("Production", key)
    assert SecretStore(secret_service).get_api_key("Production") == key
    assert _files_containing(key, *_scratch_dirs()) == []


@pytest.mark.keyring
def test_a_chain_with_the_secret_service_uses_it(secret_service: str) -> None:
    keyring.set_keyring(keyring.backends.chainer.ChainerBackend())
    store = SecretStore(secret_service)
    assert store.usable and "SecretService" in store.status
    store.set_api_key("Production", "chained-key-0123456789abcdef")
    from keyring.backends import SecretService

    stored = SecretService.Keyring().get_password(secret_service, "api-key:Production")
    assert stored == "chained-key-0123456789abcdef"


@pytest.mark.keyring
def test_session_only_keys_never_reach_the_real_keyring(secret_service: str) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    store = SecretStore(secret_service)
    store.set_api_key("Production", "session-only-key-0123456789abcdef")
    assert store.get_api_key("Production") == "session-only-key-0123456789abcdef"
    from keyring.backends import SecretService

    assert SecretService.Keyring().get_password(secret_service, "api-key:Production") is None


_ISOLATED_SESSION = """
set -e
export HOME="$SCRATCH/home" XDG_DATA_HOME="$SCRATCH/data" XDG_RUNTIME_DIR="$SCRATCH/run"
mkdir -p "$HOME" "$XDG_DATA_HOME"; mkdir -m 700 -p "$XDG_RUNTIME_DIR"
eval "$(printf 'another-throwaway' | gnome-keyring-daemon --unlock --components=secrets)"
exec "$PYTHON" -c "$SCRIPT"
"""


def _run_in_own_keyring_session(tmp_path: Path, script: str) -> dict[str, Any]:
    """Run ``script`` against a private gnome-keyring of its own (it may lock or kill it)."""
    for tool in ("dbus-run-session", "gnome-keyring-daemon"):
        if shutil.which(tool) is None:
            if os.environ.get("NETCORE_IN_TEST_SESSION"):
                pytest.fail(f"{tool} is missing: install it as .ci/run does")
            pytest.skip(f"{tool} is not installed")
    env = {
        **os.environ,
        "SCRATCH": str(tmp_path),
        "PYTHON": sys.executable,
        "SCRIPT": textwrap.dedent(script),
    }
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    result = subprocess.run(
        ["dbus-run-session", "--", "bash", "-c", _ISOLATED_SESSION],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.keyring
def test_a_locked_keyring_gives_a_clear_error(tmp_path: Path) -> None:
    out = _run_in_own_keyring_session(
        tmp_path,
        """
        import json, secretstorage
        from netcore_desktop.core.secrets import SecretStore, SecretStoreError
        store = SecretStore("netcore-desktop-lock-test")
        store.set_api_key("Production", "key-before-locking-0123456789")
        conn = secretstorage.dbus_init()
        secretstorage.get_default_collection(conn).lock()
        try:
            store.get_api_key("Production")
            print(json.dumps({"error": None}))
        except SecretStoreError as exc:
            print(json.dumps({"error": str(exc)}))
        """,
    )
    assert out["error"] is not None
    assert "locked" in out["error"] and "unlock it" in out["error"]
    assert "key-before-locking" not in out["error"]


@pytest.mark.keyring
def test_no_session_bus_means_session_only_keys(tmp_path: Path) -> None:
    out = _run_in_own_keyring_session(
        tmp_path,
        """
        import json, os
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=/nonexistent/bus"
        from netcore_desktop.core.secrets import SecretStore
        store = SecretStore("netcore-desktop-nobus-test")
        store.set_api_key("Production", "no-bus-key-0123456789abcdef")
        print(json.dumps({"usable": store.usable, "status": store.status,
                          "key": store.get_api_key("Production")}))
        """,
    )
    assert out["usable"] is False
    assert "session only" in out["status"] and "asked again next time" in out["status"]
    assert out["key"] == "no-bus-key-0123456789abcdef"


# --- keyrings that must not be trusted ----------------------------------------------------


class PlaintextKeyring(keyring.backend.KeyringBackend):
    """A file backend that stores secrets in clear, like keyrings.alt's PlaintextKeyring."""

    priority = 0.5  # type: ignore[assignment]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def _load(self) -> dict[str, str]:
        return dict(json.loads(self.path.read_text())) if self.path.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}/{username}"] = password
        self.path.write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        data.pop(f"{service}/{username}", None)
        self.path.write_text(json.dumps(data))


@pytest.mark.parametrize("kind", ["fail", "null", "plaintext", "empty-chain"])
def test_untrusted_keyrings_keep_keys_for_the_session_only(
    kind: str, tmp_path: Path, restore_keyring: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    plaintext_file = tmp_path / "keyring_pass.cfg"
    backend: Any
    if kind == "fail":
        backend = keyring.backends.fail.Keyring()
    elif kind == "null":
        backend = keyring.backends.null.Keyring()
    elif kind == "plaintext":
        backend = PlaintextKeyring(plaintext_file)
    else:
        # A chain whose every member is filtered out: nothing left to keep secrets in.
        monkeypatch.setattr(keyring.backend, "_limit", lambda _backend: False)
        backend = keyring.backends.chainer.ChainerBackend()
    keyring.set_keyring(backend)

    store = SecretStore("netcore-desktop-untrusted-test")
    assert not store.usable
    assert store.status.startswith("No usable keyring")
    assert "session only" in store.status and "asked again next time" in store.status

    key = f"session-key-{uuid.uuid4().hex}"
    store.set_api_key("Production", key)
    store.set_smtp_password("Production", "session-smtp-password")
    assert store.get_api_key("Production") == key
    assert store.get_smtp_password("Production") == "session-smtp-password"
    # The next start of the app asks again: nothing was kept.
    assert SecretStore("netcore-desktop-untrusted-test").get_api_key("Production") is None
    # And nothing was written: not to the plaintext file, not anywhere under the test's dirs.
    assert not plaintext_file.exists()
    assert _files_containing(key, tmp_path, *_scratch_dirs()) == []
    store.delete_api_key("Production")
    assert store.get_api_key("Production") is None


def test_falling_back_to_the_session_when_the_keyring_fails(restore_keyring: None) -> None:
    keyring.set_keyring(PlaintextKeyring(Path("/nonexistent/never-written")))
    store = SecretStore("netcore-desktop-fallback-test")
    store.fall_back_to_session("the keyring stopped answering")
    assert not store.usable
    assert "the keyring stopped answering" in store.status and "session only" in store.status
    store.set_api_key("Production", "fallback-key-0123456789abcdef")
    assert store.get_api_key("Production") == "fallback-key-0123456789abcdef"


def test_empty_keys_and_profile_names_are_refused(restore_keyring: None) -> None:
    keyring.set_keyring(keyring.backends.null.Keyring())
    store = SecretStore()
    with pytest.raises(ValueError, match="empty"):
        store.set_api_key("Production", "   \n")
    with pytest.raises(ValueError, match="profile name"):
        store.set_api_key("", "some-key-0123456789")


# --- masking -------------------------------------------------------------------------------


def test_mask_keeps_only_a_short_prefix_of_long_secrets() -> None:
    assert mask_secret("sandbox-key-0123456789") == "sand…(masked)"
    assert mask_secret("short-pw") == "…(masked)"  # short secrets are masked entirely


def test_redact_masks_given_secrets_and_credential_headers() -> None:
    key = "live-key-7c5e2d1f0a9b8c7d6e5f4a3b2c1d0e9f"
    text = f"POST /v6/mail/send key={key} again {key}"
    assert redact(text, [key]) == "POST /v6/mail/send key=live…(masked) again live…(masked)"
    curl = (
        "curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz' -H 'api_key: 0123456789abcdef'"
    )
    masked = redact(curl, [])
    assert "abcdefghijklmnopqrstuvwxyz" not in masked and "0123456789abcdef" not in masked
    assert "Bearer abcd…(masked)" in masked and "api_key: 0123…(masked)" in masked
    body = '{"api_key": "0123456789abcdef", "field": "api_key"}'
    assert redact(body, []) == '{"api_key": "0123…(masked)", "field": "api_key"}'
    # Masking twice changes nothing, and text without secrets is left alone.
    assert redact(redact(text, [key]), [key]) == redact(text, [key])
    assert redact("Hi [%FIRST_NAME%], invoice INV-1042", [key]) == (
        "Hi [%FIRST_NAME%], invoice INV-1042"
    )


def test_a_secret_containing_another_is_masked_whole() -> None:
    inner, outer = "abcd-1234-efgh", "abcd-1234-efgh-5678-ijkl"
    out = redact(f"{outer} and {inner}", [inner, outer])
    assert inner not in out and "5678" not in out


@pytest.fixture
def captured_root_log() -> Iterator[io.StringIO]:
    """A handler on the root logger with redaction installed, as the app sets it up."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    install_redaction()
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_every_key_the_store_handles_is_masked_in_logs(
    captured_root_log: io.StringIO, restore_keyring: None
) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    store = SecretStore("netcore-desktop-log-test")
    key = f"logged-key-{uuid.uuid4().hex}"
    store.set_api_key("Production", key)
    log = logging.getLogger("netcore_desktop.core.client")
    log.info("sending with key %s to %s", key, "https://emailapi.netcorecloud.net")
    try:
        raise RuntimeError(f"the service echoed the key {key}")
    except RuntimeError:
        log.exception("send failed")
    log.warning("headers: %r", {"Authorization": f"Bearer {key}"})
    out = captured_root_log.getvalue()
    assert key not in out
    assert "sending with key logg…(masked) to https://emailapi.netcorecloud.net" in out
    assert "RuntimeError: the service echoed the key logg…(masked)" in out
    assert out.count("…(masked)") == 3


@pytest.mark.keyring
def test_a_key_read_from_the_keyring_is_masked_in_logs(
    secret_service: str, captured_root_log: io.StringIO
) -> None:
    key = f"stored-elsewhere-{uuid.uuid4().hex}"
    # Stored by another process (the command line), read here: reading registers it.
    _in_another_process(
        f"""
        from netcore_desktop.core.secrets import SecretStore
        SecretStore({secret_service!r}).set_api_key("Production", {key!r})
        """
    )
    assert SecretStore(secret_service).get_api_key("Production") == key
    logging.getLogger("netcore_desktop.cli").error("401 with key %s", key)
    assert key not in captured_root_log.getvalue()
    assert "stor…(masked)" in captured_root_log.getvalue()


def test_install_redaction_is_idempotent(captured_root_log: io.StringIO) -> None:
    install_redaction()
    install_redaction()
    for handler in logging.getLogger().handlers:
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
    register_secret("registered-directly-0123456789")
    logging.getLogger("x").warning("value registered-directly-0123456789")
    assert "regi…(masked)" in captured_root_log.getvalue()


def test_handlers_added_after_installing_are_masked_too(captured_root_log: io.StringIO) -> None:
    # The window adds its log view's handler after start-up.
    later = io.StringIO()
    handler = logging.StreamHandler(later)
    logger = logging.getLogger("netcore_desktop.ui.log_view")
    logger.addHandler(handler)
    try:
        register_secret("added-later-0123456789abcdef")
        logger.warning("key %s", "added-later-0123456789abcdef")
        try:
            raise ValueError("added-later-0123456789abcdef")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert "added-later-0123456789abcdef" not in later.getvalue()
    assert later.getvalue().count("adde…(masked)") == 3


def test_records_without_secrets_are_left_as_they_were() -> None:
    install_redaction()
    record = logging.getLogger("x").makeRecord(
        "x", logging.INFO, __file__, 1, "sent %d of %d", (3, 10), None
    )
    assert record.args == (3, 10) and record.getMessage() == "sent 3 of 10"
