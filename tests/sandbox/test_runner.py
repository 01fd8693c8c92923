"""EmbeddedSandbox's life cycle: fast start and stop, loopback only, nothing lost on stop."""

from __future__ import annotations

import smtplib
import threading
import time
from pathlib import Path

import httpx
import pytest

from netcore_desktop.sandbox import EmbeddedSandbox, SandboxConfig

from .conftest import payload, v6


def test_start_and_stop_each_take_under_a_second(tmp_path: Path) -> None:
    sandbox = EmbeddedSandbox(SandboxConfig(data_dir=tmp_path))
    start = time.perf_counter()
    sandbox.start()
    started = time.perf_counter() - start
    try:
        # Both servers really listen once start() returns.
        assert httpx.get(sandbox.base_url + "/").status_code == 200
        with smtplib.SMTP(sandbox.host, sandbox.smtp_port, timeout=5) as smtp:
            assert smtp.noop()[0] == 250
    finally:
        start = time.perf_counter()
        sandbox.stop()
        stopped = time.perf_counter() - start
    assert started < 1.0, started
    assert stopped < 1.0, stopped
    assert not sandbox.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(sandbox.base_url + "/")


def test_port_zero_picks_free_ports_and_base_url_names_them(
    sandbox: EmbeddedSandbox,
) -> None:
    assert sandbox.port > 0 and sandbox.smtp_port > 0 and sandbox.port != sandbox.smtp_port
    assert sandbox.base_url == f"http://127.0.0.1:{sandbox.port}"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_only_loopback_hosts_are_accepted(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        SandboxConfig(host=host)


def test_localhost_binds_127_0_0_1() -> None:
    assert SandboxConfig(host="localhost").host == "127.0.0.1"


def test_the_config_repr_hides_the_secrets() -> None:
    text = repr(SandboxConfig(api_key="top-secret-key", smtp_password="top-secret-pw"))
    assert "top-secret" not in text


def test_a_taken_port_fails_in_start(sandbox: EmbeddedSandbox) -> None:
    other = EmbeddedSandbox(SandboxConfig(port=sandbox.port))
    with pytest.raises(OSError):
        other.start()
    assert not other.running


def test_context_manager_starts_and_stops(tmp_path: Path) -> None:
    with EmbeddedSandbox(SandboxConfig(data_dir=tmp_path)) as sandbox:
        assert sandbox.running
        url = sandbox.base_url
    assert not sandbox.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/")


def test_messages_survive_a_restart_on_the_same_data_dir(tmp_path: Path) -> None:
    with EmbeddedSandbox(SandboxConfig(data_dir=tmp_path)) as sandbox:
        r = httpx.post(sandbox.base_url + "/v6/mail/send", json=payload(token="nd-kept"),
                       headers=v6(sandbox))
        assert r.status_code == 200
    with EmbeddedSandbox(SandboxConfig(data_dir=tmp_path)) as again:
        assert [m["message_id"] for m in again.messages(token="nd-kept")] == [
            r.json()["data"]["message_id"]
        ]


def test_temporary_data_dir_is_removed_on_stop() -> None:
    with EmbeddedSandbox() as sandbox:
        data_dir = sandbox.data_dir
        assert data_dir is not None and data_dir.is_dir()
    assert not data_dir.exists()


def test_stop_answers_and_keeps_a_request_in_flight(tmp_path: Path) -> None:
    sandbox = EmbeddedSandbox(SandboxConfig(data_dir=tmp_path, latency_ms=400)).start()
    result: dict[str, httpx.Response] = {}

    def send() -> None:
        result["r"] = httpx.post(sandbox.base_url + "/v6/mail/send",
                                 json=payload(token="nd-flight"), headers=v6(sandbox))

    thread = threading.Thread(target=send)
    thread.start()
    time.sleep(0.15)  # the request is in the sandbox, waiting out its latency
    sandbox.stop()
    thread.join(5)
    assert result["r"].status_code == 200
    message_id = result["r"].json()["data"]["message_id"]
    with EmbeddedSandbox(SandboxConfig(data_dir=tmp_path)) as again:
        assert again.message(message_id) is not None


def test_many_concurrent_sends_are_all_recorded(sandbox: EmbeddedSandbox) -> None:
    ids: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=sandbox.base_url, headers=v6(sandbox)) as api:
            for _ in range(25):
                ids.append(api.post("/v6/mail/send", json=payload()).json()["data"]["message_id"])

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 200
    assert {m["message_id"] for m in sandbox.messages()} == set(ids)


def test_python_api_needs_a_running_sandbox() -> None:
    with pytest.raises(RuntimeError):
        EmbeddedSandbox().messages()


def test_stop_is_quick_with_idle_connections_open(tmp_path: Path) -> None:
    sandbox = EmbeddedSandbox(SandboxConfig(data_dir=tmp_path)).start()
    api = httpx.Client(base_url=sandbox.base_url)
    smtp = smtplib.SMTP(sandbox.host, sandbox.smtp_port, timeout=5)
    try:
        assert api.post("/v6/mail/send", json=payload(), headers=v6(sandbox)).status_code == 200
        smtp.login(sandbox.smtp_user, sandbox.smtp_password)
        start = time.perf_counter()
        sandbox.stop()
        assert time.perf_counter() - start < 1.0
        # The idle SMTP session was ended by the sandbox.
        with pytest.raises(smtplib.SMTPServerDisconnected):
            smtp.noop()
    finally:
        api.close()
        smtp.close()
