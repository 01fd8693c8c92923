"""``netcore-desktop sandbox`` as a real process: start, send, SIGTERM/SIGINT, nothing lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import payload

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "netcore_desktop", "sandbox", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    printed: dict[str, str] = {}
    for line in proc.stdout:
        if ":" in line and not line.startswith("Press"):
            key, _, value = line.partition(":")
            printed[key.strip()] = value.strip()
        if line.startswith("Press Ctrl+C"):
            break
    else:
        proc.wait(10)
        pytest.fail(f"the sandbox did not start: {proc.stderr.read()}")  # type: ignore[union-attr]
    return proc, printed


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_where_it_listens_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    proc, printed = _start("--port", "0", "--api-key", "cli-key", "--data-dir", str(tmp_path),
                           "--smtp-user", "cli-user", "--smtp-password", "cli-pw")
    try:
        base_url = printed["Netcore sandbox API"]
        assert base_url.startswith("http://127.0.0.1:")
        assert printed["API key"] == "cli-key"
        assert printed["SMTP relay"].startswith("127.0.0.1:")
        assert printed["SMTP user / password"] == "cli-user / cli-pw"
        response = httpx.post(base_url + "/v6/mail/send", json=payload(token="nd-cli"),
                              headers={"Authorization": "Bearer cli-key"})
        assert response.status_code == 200
        message_id = response.json()["data"]["message_id"]
        proc.send_signal(sig)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with sqlite3.connect(tmp_path / "sandbox.sqlite3") as conn:
        rows = conn.execute("SELECT message_id FROM messages").fetchall()
    conn.close()
    assert rows == [(message_id,)]


def test_cli_fault_flags(tmp_path: Path) -> None:
    proc, printed = _start("--daily-limit", "1", "--fail-rate", "0", "--latency-ms", "0",
                           "--drop-rate", "0", "--seed", "3", "--data-dir", str(tmp_path))
    try:
        url = printed["Netcore sandbox API"]
        faults = httpx.get(url + "/sandbox/faults").json()
        assert faults["daily_limit"] == 1 and faults["seed"] == 3
        auth = {"Authorization": "Bearer sandbox-key"}
        codes = [httpx.post(url + "/v6/mail/send", json=payload(), headers=auth).status_code
                 for _ in range(2)]
        assert codes == [200, 202]
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


@pytest.mark.parametrize(
    "args", [["--host", "0.0.0.0"], ["--fail-rate", "2"], ["--port", "70000"]]
)
def test_cli_refuses_bad_flags(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "netcore_desktop", "sandbox", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 2
    assert "sandbox" in done.stderr
