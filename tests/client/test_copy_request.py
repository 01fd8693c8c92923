""""Copy as cURL" and "copy as Python": the copied command sends the very same bytes.

Each test sends a request with the client, turns the recorded request into a command, runs
that command for real against the sandbox, and compares what the sandbox received byte for
byte with what the client sent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netcore_desktop.core.client import KEY_MASK, ApiResult, NetcoreClient, to_curl, to_python
from netcore_desktop.core.contract import ApiVersion
from netcore_desktop.core.message import Attachment, build_payload
from netcore_desktop.sandbox import EmbeddedSandbox

from ._support import FAST_RETRY, make_draft, raw_body

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

# Quotes, a percent sign, backslashes, a dollar, non-ASCII text: what breaks naive quoting.
TRICKY = "Bob's \"50% off\" \\o/ $HOME `date` café ☕ \u2028 end"


def _latest(sandbox: EmbeddedSandbox, token: str) -> dict[str, object]:
    found = sandbox.messages(token=token)
    assert found, "the copied command did not reach the sandbox"
    return found[0]


def _sent(client: NetcoreClient, **changes: object) -> tuple[ApiResult, str]:
    draft = make_draft(subject=TRICKY, body=f"{TRICKY}\n\n'single' and \"double\"", **changes)
    result = client.send(build_payload(draft, client.api_version))
    assert result.ok, result.summary()
    return result, draft.envelopes[0].token


def _run_shell(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("version", [ApiVersion.V6, ApiVersion.V5_1])
def test_curl_sends_the_same_bytes(sandbox: EmbeddedSandbox, version: ApiVersion) -> None:
    with NetcoreClient(sandbox.base_url, sandbox.api_key, api_version=version,
                       retry=FAST_RETRY) as client:
        result, token = _sent(client)
    assert result.request is not None
    command = to_curl(result.request, reveal_key=sandbox.api_key)
    done = _run_shell(command)
    assert done.returncode == 0, done.stderr
    assert '"status":"success"' in done.stdout.replace(" ", "")
    copy = _latest(sandbox, token)
    assert copy["message_id"] != result.message_id
    assert raw_body(sandbox, str(copy["message_id"])) == result.request.body_bytes
    headers = copy["headers"]
    assert isinstance(headers, dict)
    assert headers["user-agent"] == result.request.header("User-Agent")
    assert headers["content-type"] == "application/json"


def test_curl_of_a_gzipped_request_sends_the_same_bytes(sandbox: EmbeddedSandbox) -> None:
    with NetcoreClient(sandbox.base_url, sandbox.api_key, retry=FAST_RETRY) as client:
        result, token = _sent(client, attachments=(Attachment("a.bin", os.urandom(90_000)),))
    assert result.request is not None and result.request.compressed
    done = _run_shell(to_curl(result.request, reveal_key=sandbox.api_key))
    assert done.returncode == 0, done.stderr
    copy = _latest(sandbox, token)
    assert copy["message_id"] != result.message_id
    assert raw_body(sandbox, str(copy["message_id"])) == result.request.body_bytes
    assert copy["headers"]["content-encoding"] == "gzip"  # type: ignore[index]


def test_python_sends_the_same_bytes(sandbox: EmbeddedSandbox, tmp_path: Path) -> None:
    with NetcoreClient(sandbox.base_url, sandbox.api_key, retry=FAST_RETRY) as client:
        result, token = _sent(client, attachments=(Attachment("a.bin", os.urandom(90_000)),))
    assert result.request is not None
    script = tmp_path / "send.py"
    script.write_text(to_python(result.request, reveal_key=sandbox.api_key), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("200")
    copy = _latest(sandbox, token)
    assert copy["message_id"] != result.message_id
    assert raw_body(sandbox, str(copy["message_id"])) == result.request.body_bytes


def test_copies_mask_the_key_unless_asked(sandbox: EmbeddedSandbox, tmp_path: Path) -> None:
    with NetcoreClient(sandbox.base_url, sandbox.api_key, retry=FAST_RETRY) as client:
        result, token = _sent(client)
    assert result.request is not None
    curl = to_curl(result.request)
    python = to_python(result.request)
    for text in (curl, python):
        assert sandbox.api_key not in text
        assert KEY_MASK in text
    # The masked copy really carries no key: the service refuses it.
    done = _run_shell(curl)
    assert done.returncode == 0, done.stderr
    assert '"status":"error"' in done.stdout.replace(" ", "")
    assert len(sandbox.messages(token=token)) == 1
    assert sandbox.api_key in to_curl(result.request, reveal_key=sandbox.api_key)


def test_curl_of_a_get_has_no_body(client: NetcoreClient, sandbox: EmbeddedSandbox) -> None:
    result = client.list_templates()
    assert result.request is not None
    command = to_curl(result.request, reveal_key=sandbox.api_key)
    assert "--data-binary" not in command
    done = _run_shell(command)
    assert done.returncode == 0 and '"templates"' in done.stdout
