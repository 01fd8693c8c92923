"""Profiles on disk: round trips, atomic writes, no secrets, and files this version can't read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netcore_desktop.core import paths
from netcore_desktop.core.contract import ApiVersion, Region
from netcore_desktop.core.profiles import (
    FILE_VERSION,
    Profile,
    ProfileFileError,
    ProfileStore,
    SmtpSecurity,
    Transport,
    is_loopback_host,
)


def sandbox_profile(name: str = "Sandbox") -> Profile:
    return Profile(
        name=name,
        region=Region.CUSTOM,
        base_url="http://127.0.0.1:8025/",
        sender_email="billing@mail.example.org",
        sender_name="Example Billing",
        reply_to="help@example.org",
        test_address="me@example.org",
        is_sandbox=True,
    )


def smtp_profile() -> Profile:
    return Profile(
        name="Relay",
        transport=Transport.SMTP,
        sender_email="billing@mail.example.org",
        smtp_host="smtp.netcorecloud.net",
        smtp_port=465,
        smtp_user="example-smtp-user",
        smtp_security=SmtpSecurity.TLS,
        proxy="http://proxy.example.org:3128",
        timeout_s=12.5,
        api_version=ApiVersion.V5_1,
        region=Region.EU,
    )


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    return ProfileStore(tmp_path / "profiles.json")


# --- the profile itself ------------------------------------------------------------------


def test_api_base_url_per_region() -> None:
    assert Profile("a").api_base_url() == "https://emailapi.netcorecloud.net"
    assert Profile("a", region=Region.EU).api_base_url() == "https://apieu.netcorecloud.net"
    assert Profile("a", region=Region.LEGACY).api_base_url() == "https://api.pepipost.com"
    assert sandbox_profile().api_base_url() == "http://127.0.0.1:8025"


def test_defaults_are_the_common_case() -> None:
    p = Profile("Main")
    assert (p.region, p.api_version, p.transport) == (Region.DEFAULT, ApiVersion.V6, Transport.API)
    assert (p.smtp_port, p.smtp_security, p.timeout_s) == (587, SmtpSecurity.STARTTLS, 30.0)
    assert p.proxy == "" and p.ca_bundle == "" and not p.is_sandbox


def test_valid_profiles_have_no_problems() -> None:
    assert sandbox_profile().validate() == []
    assert smtp_profile().validate() == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"name": ""}, "needs a name"),
        ({"name": " padded "}, "spaces around"),
        ({"sender_email": ""}, "sender address is empty"),
        ({"sender_email": "not-an-address"}, "Sender:"),
        ({"reply_to": "bad@"}, "Reply-to:"),
        ({"test_address": "me at example"}, "Test address:"),
        ({"base_url": ""}, "needs a base URL"),
        ({"base_url": "ftp://127.0.0.1"}, "must start with https://"),
        ({"base_url": "http://api.example.org"}, "unencrypted"),
        ({"base_url": "https://api.example.org/?x=1"}, "query"),
        ({"proxy": "proxy.example.org:3128"}, "proxy must be a URL"),
        ({"proxy": "socks5://127.0.0.1:1080"}, "SOCKS proxies are not supported"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "does not exist"),
        ({"timeout_s": 0.0}, "timeout"),
    ],
)
def test_each_problem_is_reported_in_words(changes: dict[str, object], expected: str) -> None:
    from dataclasses import replace

    problems = replace(sandbox_profile(), **changes).validate()  # type: ignore[arg-type]
    assert any(expected in p for p in problems), problems


def test_smtp_problems() -> None:
    from dataclasses import replace

    base = smtp_profile()
    plain = replace(base, smtp_security=SmtpSecurity.NONE, smtp_port=25).validate()
    assert any("clear text" in p for p in plain)
    # Plain SMTP is fine to this computer (the sandbox's relay).
    assert replace(base, smtp_security=SmtpSecurity.NONE, smtp_host="127.0.0.1").validate() == []
    assert any("STARTTLS" in p for p in replace(base, smtp_port=587).validate())
    assert any("between 1 and 65535" in p for p in replace(base, smtp_port=0).validate())
    assert any("username" in p for p in replace(base, smtp_user="").validate())


def test_legacy_host_only_speaks_v5() -> None:
    assert any(
        "v5" in p for p in Profile("a", region=Region.LEGACY, sender_email="a@b.org").validate()
    )
    ok = Profile("a", region=Region.LEGACY, api_version=ApiVersion.V5, sender_email="a@b.org")
    assert ok.validate() == []


def test_loopback_hosts() -> None:
    for host in ("localhost", "127.0.0.1", "127.5.5.5", "::1", "[::1]", "sandbox.localhost"):
        assert is_loopback_host(host), host
    for host in ("example.org", "10.0.0.1", "localhost.example.org", ""):
        assert not is_loopback_host(host), host


# --- the store ---------------------------------------------------------------------------


def test_round_trip_every_field(store: ProfileStore) -> None:
    a, b = sandbox_profile(), smtp_profile()
    store.save(a)
    store.save(b)
    again = ProfileStore(store.path)  # as the next start of the app sees it
    assert again.get("Sandbox") == a
    assert again.get("Relay") == b
    assert [p.name for p in again.list()] == ["Relay", "Sandbox"]
    assert isinstance(again.get("Relay").transport, Transport)


def test_save_replaces_by_name_and_remove_deletes(store: ProfileStore) -> None:
    from dataclasses import replace

    store.save(sandbox_profile())
    store.save(replace(sandbox_profile(), sender_name="Renamed sender"))
    assert len(store.list()) == 1
    assert store.get("Sandbox").sender_name == "Renamed sender"
    store.remove("Sandbox")
    assert store.list() == []
    with pytest.raises(KeyError):
        store.get("Sandbox")
    with pytest.raises(KeyError):
        store.remove("Sandbox")


def test_empty_store_has_no_file_until_first_save(store: ProfileStore) -> None:
    assert store.list() == [] and store.last_used() is None
    assert not store.path.exists()


def test_last_used(store: ProfileStore) -> None:
    store.save(sandbox_profile())
    store.save(smtp_profile())
    store.set_last_used("Relay")
    assert ProfileStore(store.path).last_used() == "Relay"
    with pytest.raises(KeyError):
        store.set_last_used("Nobody")
    store.remove("Relay")
    assert store.last_used() is None


def test_rename_keeps_last_used(store: ProfileStore) -> None:
    store.save(sandbox_profile())
    store.set_last_used("Sandbox")
    store.rename("Sandbox", "Offline")
    assert store.names() == ["Offline"] and store.last_used() == "Offline"
    store.save(sandbox_profile())
    with pytest.raises(ValueError, match="already exists"):
        store.rename("Sandbox", "Offline")


def test_two_stores_on_one_file_keep_each_others_changes(store: ProfileStore) -> None:
    window, cli = store, ProfileStore(store.path)
    window.save(sandbox_profile())
    cli.save(smtp_profile())
    window.set_last_used("Sandbox")
    assert cli.names() == ["Relay", "Sandbox"] and cli.last_used() == "Sandbox"


def test_default_location_is_the_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    s = ProfileStore()
    s.save(sandbox_profile())
    assert (tmp_path / "config" / "profiles.json").is_file()


def test_writes_are_atomic_and_keep_a_backup(store: ProfileStore) -> None:
    store.save(sandbox_profile())
    first = store.path.read_bytes()
    store.save(smtp_profile())
    # The previous good file is kept one step back, and no temporary file is left behind.
    assert store.path.with_name("profiles.json.bak").read_bytes() == first
    assert sorted(p.name for p in store.path.parent.iterdir()) == [
        "profiles.json",
        "profiles.json.bak",
    ]
    doc = json.loads(store.path.read_text("utf-8"))
    assert doc["format"] == "netcore-desktop-profiles" and doc["version"] == FILE_VERSION


def test_no_secret_ever_lands_in_the_file(store: ProfileStore) -> None:
    key = "sk-live-5f0c1d2e3b4a59687766554433221100"
    doc = {
        "format": "netcore-desktop-profiles",
        "version": FILE_VERSION,
        "last_used": None,
        # A hand-edited (or foreign) file that put the key next to the profile.
        "profiles": [{**sandbox_profile().to_dict(), "api_key": key, "password": key}],
    }
    store.path.write_text(json.dumps(doc), "utf-8")
    assert store.get("Sandbox") == sandbox_profile()
    store.save(smtp_profile())
    raw = store.path.read_bytes()
    assert key.encode() not in raw and b"api_key" not in raw and b"password" not in raw


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{not json", "damaged"),
        (b"\xff\xfe\x00garbage", "damaged"),
        (b'{"format": "something-else", "version": 1}', "not a Netcore Desktop profiles file"),
        (b'{"format": "netcore-desktop-profiles", "version": 99, "profiles": []}', "newer"),
        (
            b'{"format": "netcore-desktop-profiles", "version": 0, "profiles": []}',
            "unknown version",
        ),
        (
            b'{"format": "netcore-desktop-profiles", "version": 1, "profiles": {}}',
            "no profile list",
        ),
        (
            b'{"format": "netcore-desktop-profiles", "version": 1,'
            b' "profiles": [{"name": "x", "region": "mars"}]}',
            "bad entry",
        ),
    ],
)
def test_unreadable_files_are_reported_and_never_overwritten(
    store: ProfileStore, content: bytes, words: str
) -> None:
    store.path.write_bytes(content)
    with pytest.raises(ProfileFileError, match=words) as caught:
        store.list()
    assert str(store.path) in str(caught.value)
    # Saving must not silently replace what the person (or a newer version) wrote.
    with pytest.raises(ProfileFileError):
        store.save(sandbox_profile())
    with pytest.raises(ProfileFileError):
        store.set_last_used("x")
    assert store.path.read_bytes() == content

    # Only when asked, the file is set aside (kept, byte for byte) and a fresh one starts.
    backup = store.set_aside_unreadable()
    assert backup is not None and backup.read_bytes() == content
    store.save(sandbox_profile())
    assert store.names() == ["Sandbox"]
    assert backup.read_bytes() == content


def test_set_aside_leaves_a_good_file_alone(store: ProfileStore) -> None:
    store.save(sandbox_profile())
    assert store.set_aside_unreadable() is None
    assert store.names() == ["Sandbox"]
