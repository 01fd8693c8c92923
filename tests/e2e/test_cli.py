"""The command line end to end: real processes, a real sandbox, the real keyring.

Every command runs as ``python -m netcore_desktop ...`` in its own process with
``NETCORE_DESKTOP_HOME`` and ``HOME`` pointing into a temporary directory, exactly as a person
would run it. The keyring is the Secret Service that ``bash tests/run.sh`` starts. At the
end of the session every file the app could have written is searched for the key and the
SMTP password.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from netcore_desktop.core.secrets import SecretStore
from netcore_desktop.sandbox import EmbeddedSandbox

pytestmark = pytest.mark.keyring

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cli:
    """Runs the app's command line in a private home directory."""

    root: Path
    env: dict[str, str]
    outputs: list[str]

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "netcore_desktop", *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        self.outputs += [done.stdout, done.stderr]
        return done

    def json(self, *args: str, stdin: str | None = None) -> tuple[int, object]:
        done = self(*args, "--json", stdin=stdin)
        try:
            return done.returncode, json.loads(done.stdout)
        except ValueError:
            raise AssertionError(f"not JSON: {done.stdout!r} {done.stderr!r}") from None


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = dict(os.environ)
    env.update(
        NETCORE_DESKTOP_HOME=str(tmp_path / "app"),
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),
        XDG_STATE_HOME=str(tmp_path / "xdg-state"),
    )
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    (tmp_path / "home").mkdir()
    return Cli(tmp_path, env, [])


@pytest.fixture
def secret_sandbox(
    sandbox_factory: Callable[..., EmbeddedSandbox],
) -> EmbeddedSandbox:
    # Distinctive secrets, so that finding them in a file cannot be a coincidence.
    return sandbox_factory(
        api_key=f"key-{uuid.uuid4().hex}", smtp_password=f"pw-{uuid.uuid4().hex}"
    )


@pytest.fixture
def name() -> Iterator[str]:
    profile = f"e2e-{uuid.uuid4().hex[:8]}"
    yield profile
    store = SecretStore()
    for suffix in ("", "-wrong", "-dead", "-smtp"):
        store.delete_all(profile + suffix)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _add_api_profile(cli: Cli, name: str, base_url: str, key: str) -> None:
    done = cli("profile", "add", name, "--base-url", base_url,
               "--from", "billing@mail.example.org", "--from-name", "Example Billing",
               "--sandbox")
    assert done.returncode == 0, done.stderr
    done = cli("profile", "set-key", name, stdin=key + "\n")
    assert done.returncode == 0, done.stderr
    assert "Stored" in done.stdout


def test_a_full_cli_session_leaves_no_secret_on_disk(
    cli: Cli, secret_sandbox: EmbeddedSandbox, name: str
) -> None:
    sandbox = secret_sandbox
    key, password = sandbox.api_key, sandbox.smtp_password
    _add_api_profile(cli, name, sandbox.base_url, key)

    # 1. A send that goes through: exit 0, and the service has it.
    code, out = cli.json(
        "send", "--profile", name, "--to", "Asha Rao <asha@example.net>",
        "--subject", "Invoice [%INVOICE_NO%] is ready", "--body", "Hi **[%FIRST_NAME%]**",
        "--attr", "FIRST_NAME=Asha", "--attr", "INVOICE_NO=INV-1042", "--tag", "invoice",
    )
    assert code == 0, out
    assert isinstance(out, dict)
    (request,) = out["requests"]
    assert request["outcome"] == "sent" and request["status_code"] == 200
    (stored,) = sandbox.messages(token=out["tokens"][0])
    assert stored["message_id"] == request["message_id"]
    assert stored["request"]["subject"] == "Invoice [%INVOICE_NO%] is ready"
    first_id = request["attempt_id"]

    # 2. A bad address: refused by the checks, exit 2, nothing sent.
    done = cli("send", "--profile", name, "--to", "asha@@example.net", "--subject", "Hi",
               "--body", "Hello")
    assert done.returncode == 2
    assert "asha@@example.net" in done.stderr and "Traceback" not in done.stderr
    assert len(sandbox.messages()) == 1

    # 3. A wrong key: refused by the API, exit 3, with the region hint.
    _add_api_profile(cli, name + "-wrong", sandbox.base_url, "not-the-key")
    done = cli("send", "--profile", name + "-wrong", "--to", "asha@example.net",
               "--subject", "Hi", "--body", "Hello")
    assert done.returncode == 3, done.stderr
    assert "region" in done.stderr and "Traceback" not in done.stderr

    # 4. Nobody listening: network trouble after the retries, exit 4.
    _add_api_profile(cli, name + "-dead", f"http://127.0.0.1:{_dead_port()}", key)
    done = cli("send", "--profile", name + "-dead", "--to", "asha@example.net",
               "--subject", "Hi", "--body", "Hello")
    assert done.returncode == 4, done.stderr
    assert "Could not connect" in done.stderr and "Traceback" not in done.stderr

    # 5. A mistyped address goes out, then is resent to the corrected one.
    code, out = cli.json("send", "--profile", name, "--to", "Ravi <ravi@exmaple.net>",
                         "--subject", "Welcome", "--body", "Hello Ravi")
    assert code == 0, out
    typo_id = out["requests"][0]["attempt_id"]  # type: ignore[index]
    code, out = cli.json("resend", str(typo_id), "--to", "ravi@example.net")
    assert code == 0, out
    assert isinstance(out, dict)
    resent = out["requests"][0]
    assert resent["recipients"] == ["ravi@example.net"]
    (copy,) = sandbox.messages(token=out["tokens"][0])
    assert copy["request"]["personalizations"][0]["to"] == [
        {"email": "ravi@example.net", "name": "Ravi"}
    ]

    # 6. The history finds them: by recipient, by an attribute value, by message id.
    code, found = cli.json("history", "asha@example.net")
    assert code == 0 and first_id in [e["id"] for e in found]  # type: ignore[union-attr]
    code, found = cli.json("history", "INV-1042")
    assert [e["id"] for e in found] == [first_id]  # type: ignore[union-attr]
    code, found = cli.json("history", "ravi")
    entries = {e["id"]: e for e in found}  # type: ignore[union-attr]
    assert entries[resent["attempt_id"]]["resend_of"] == typo_id
    done = cli("history", "ravi")
    assert f"(resend of #{typo_id})" in done.stdout

    # 7. The SMTP relay, with its password from stdin.
    smtp = name + "-smtp"
    done = cli("profile", "add", smtp, "--transport", "smtp", "--smtp-host", "127.0.0.1",
               "--smtp-port", str(sandbox.smtp_port), "--smtp-user", sandbox.smtp_user,
               "--smtp-security", "none", "--from", "billing@mail.example.org", "--sandbox")
    assert done.returncode == 0, done.stderr
    assert cli("profile", "set-smtp-password", smtp, stdin=password + "\n").returncode == 0
    code, out = cli.json("send", "--profile", smtp, "--to", "li@example.net",
                         "--subject", "Over SMTP", "--body", "Hello *Li*")
    assert code == 0, out
    (relayed,) = sandbox.messages(token=out["tokens"][0])  # type: ignore[index]
    assert relayed["transport"] == "smtp"

    # 8. Nothing the app wrote holds the key or the password, and nothing it printed.
    secrets = [key.encode(), password.encode()]
    scanned = 0
    for path in cli.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            scanned += 1
            for secret in secrets:
                assert secret not in data, f"{path} contains a secret"
    assert scanned >= 2  # at least the profiles file and the history
    assert (cli.root / "app" / "config" / "profiles.json").is_file()
    for text in cli.outputs:
        assert key not in text and password not in text

    # 9. Removing a profile removes its key from the keyring too.
    assert cli("profile", "remove", name).returncode == 0
    assert SecretStore().get_api_key(name) is None


def test_keys_are_never_taken_from_the_command_line(cli: Cli, name: str) -> None:
    assert cli("profile", "add", name, "--from", "a@example.org").returncode == 0
    done = cli("profile", "set-key", name, "the-key-itself")
    assert done.returncode == 2  # argparse: unrecognized argument
    done = cli("profile", "set-key", name, stdin="\n")
    assert done.returncode == 2 and "nothing was stored" in done.stderr
    assert SecretStore().get_api_key(name) is None


def test_missing_key_says_how_to_set_it(cli: Cli, sandbox: EmbeddedSandbox, name: str) -> None:
    assert cli("profile", "add", name, "--base-url", sandbox.base_url,
               "--from", "a@example.org", "--sandbox").returncode == 0
    done = cli("send", "--to", "b@example.net", "--subject", "Hi", "--body", "x")
    assert done.returncode == 1
    assert f"netcore-desktop profile set-key {name}" in done.stderr
    assert sandbox.messages() == []


def test_csv_recipients_and_their_errors(
    cli: Cli, sandbox: EmbeddedSandbox, name: str, tmp_path: Path
) -> None:
    _add_api_profile(cli, name, sandbox.base_url, sandbox.api_key)
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name,FIRST_NAME,INVOICE_NO\n"
        "asha@example.net,Asha Rao,Asha,INV-1\n"
        "\n"
        "li@example.net,Li Wei,Li,INV-2\n",
        encoding="utf-8",
    )
    code, out = cli.json("send", "--csv", str(people), "--subject", "Invoice [%INVOICE_NO%]",
                         "--body", "Hi [%FIRST_NAME%]")
    assert code == 0, out
    (stored,) = sandbox.messages()
    envelopes = stored["request"]["personalizations"]
    assert [e["to"][0]["email"] for e in envelopes] == ["asha@example.net", "li@example.net"]
    assert envelopes[1]["attributes"] == {"FIRST_NAME": "Li", "INVOICE_NO": "INV-2"}

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "email,FIRST_NAME\n"
        "asha@example.net,Asha\n"
        "not-an-address,Bob\n"
        ",Carol\n"
        "dan@example.net,Dan,extra\n",
        encoding="utf-8",
    )
    done = cli("send", "--csv", str(bad), "--subject", "Hi", "--body", "Hi [%FIRST_NAME%]")
    assert done.returncode == 2
    assert f"{bad}:3:" in done.stderr and "not-an-address" in done.stderr
    assert f"{bad}:4:" in done.stderr and "empty" in done.stderr
    assert f"{bad}:5:" in done.stderr and "3 values" in done.stderr
    assert "Traceback" not in done.stderr
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("who,FIRST_NAME\na@example.net,A\n", encoding="utf-8")
    done = cli("send", "--csv", str(nocol), "--subject", "Hi", "--body", "x")
    assert done.returncode == 2 and "no email column" in done.stderr
    assert len(sandbox.messages()) == 1


def test_warnings_need_yes_when_nobody_can_answer(
    cli: Cli, sandbox: EmbeddedSandbox, name: str
) -> None:
    _add_api_profile(cli, name, sandbox.base_url, sandbox.api_key)
    args = ("send", "--to", "a@example.net", "--subject", "Hi [%FIRST_NAME%]",
            "--body", "x", "--attr", "FIRST_NAME=")
    done = cli(*args)
    assert done.returncode == 2 and "--yes" in done.stderr
    code, out = cli.json(*args)
    assert code == 2 and isinstance(out, dict)
    assert out["requests"] == [] and out["exit_code"] == 2
    assert any(p["severity"] == "warning" and "FIRST_NAME" in p["message"]
               for p in out["problems"])
    assert sandbox.messages() == []
    done = cli(*args, "--yes")
    assert done.returncode == 0, done.stderr
    assert len(sandbox.messages()) == 1


def test_dry_run_prints_the_body_and_sends_nothing(
    cli: Cli, sandbox: EmbeddedSandbox, name: str, tmp_path: Path
) -> None:
    assert cli("profile", "add", name, "--base-url", sandbox.base_url,
               "--from", "a@example.org", "--sandbox").returncode == 0
    attachment = tmp_path / "notes.txt"
    attachment.write_text("hello", encoding="utf-8")
    done = cli("send", "--to", "b@example.net", "--subject", "Hi", "--body", "<b>x</b>",
               "--html", "--attach", str(attachment), "--reply-to", "r@example.org",
               "--dry-run")
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["content"][0]["value"] == "<b>x</b>"
    assert payload["attachments"][0]["name"] == "notes.txt"
    assert payload["reply_to"] == [{"email": "r@example.org"}]
    assert sandbox.messages() == []
    assert not (cli.root / "app" / "data" / "history.sqlite3").exists()


def test_a_saved_draft_is_sent_with_flags_overriding_it(
    cli: Cli, sandbox: EmbeddedSandbox, name: str, tmp_path: Path
) -> None:
    from netcore_desktop.core.message import Address, Draft, Envelope, draft_to_dict

    _add_api_profile(cli, name, sandbox.base_url, sandbox.api_key)
    draft = Draft(sender=Address("news@mail.example.org", "News"), subject="Saved subject",
                  body="# Saved", envelopes=(Envelope(to=(Address("old@example.net"),)),))
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(draft_to_dict(draft)), encoding="utf-8")
    code, out = cli.json("send", "--draft", str(path), "--to", "new@example.net")
    assert code == 0, out
    (stored,) = sandbox.messages()
    assert stored["request"]["subject"] == "Saved subject"
    assert stored["request"]["from"]["email"] == "news@mail.example.org"
    assert stored["request"]["personalizations"][0]["to"] == [{"email": "new@example.net"}]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    done = cli("send", "--draft", str(broken))
    assert done.returncode == 2 and "not a saved draft" in done.stderr


def test_without_a_profile_the_error_says_how_to_add_one(cli: Cli) -> None:
    done = cli("send", "--to", "a@example.net", "--subject", "Hi", "--body", "x")
    assert done.returncode == 1
    assert "profile add" in done.stderr and "Traceback" not in done.stderr
