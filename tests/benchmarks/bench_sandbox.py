"""Sandbox throughput: accepted sends per second, every one recorded.

Run it with ``.venv/bin/python -m tests.benchmarks.bench_sandbox`` (``--help`` for the
knobs). It starts the sandbox the way a person does (``python -m netcore_desktop sandbox``,
its own process) and, as the baseline, a minimal Starlette app under the same uvicorn that
answers every POST with 200 and does nothing else. Eight threads, each with one keep-alive
``httpx.Client``, post 2 KB send-mail bodies as fast as the server answers; the load
generator shares the machine's cores with the server, as it would on a desktop.

After the runs the sandbox is stopped with SIGTERM and its SQLite store is opened: every
message id a client was given must be in it, and nothing else. The table shows the median
of the runs and the sandbox's ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ._table import Row, print_table

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "bench-key"
BODY_BYTES = 2048


def make_body(token: str, size: int = BODY_BYTES) -> bytes:
    """A valid v6 send-mail body of exactly ``size`` bytes carrying ``token``."""
    payload = {
        "from": {"email": "billing@mail.example.org", "name": "Example Billing"},
        "subject": "Invoice [%INVOICE_NO%] is ready, [%FIRST_NAME%]",
        "content": [{"type": "html", "value": ""}],
        "personalizations": [
            {
                "to": [{"email": "asha@example.net", "name": "Asha Rao"}],
                "attributes": {"FIRST_NAME": "Asha", "INVOICE_NO": "INV-1042"},
                "token_to": token,
            }
        ],
        "settings": {"open_track": True, "click_track": False},
        "tags": ["invoice"],
    }
    empty = len(json.dumps(payload, separators=(",", ":")).encode())
    filler = "<p>Hi [%FIRST_NAME%], your invoice is attached.</p>"
    html = (filler * (size // len(filler) + 1))[: max(0, size - empty)]
    payload["content"][0]["value"] = html  # type: ignore[index]
    body = json.dumps(payload, separators=(",", ":")).encode()
    assert len(body) == size, len(body)
    return body


# -- the servers ---------------------------------------------------------------------------


def _serve_baseline() -> None:
    """The baseline server: a Starlette app that answers 200 and does nothing else."""
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from netcore_desktop.sandbox.runner import _http_impl

    async def send(request: Request) -> Response:
        await request.body()
        return JSONResponse(
            {"data": {"message_id": uuid.uuid4().hex}, "message": "OK", "status": "success"}
        )

    async def info(request: Request) -> Response:
        return JSONResponse({"service": "baseline"})

    app = Starlette(routes=[Route("/v6/mail/send", send, methods=["POST"]), Route("/", info)])
    # IPPROTO_TCP so that asyncio sets TCP_NODELAY, exactly as the sandbox does.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = uvicorn.Config(
        app, http=_http_impl(), ws="none", lifespan="off", log_config=None, access_log=False
    )
    print(f"Baseline API: http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


class Server:
    """A server process and the base URL it printed."""

    def __init__(self, argv: Sequence[str], marker: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            list(argv), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        self.base_url = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith(marker):
                self.base_url = line.split()[-1]
                break
        if not self.base_url:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {self.proc.stderr.read()}")  # type: ignore[union-attr]
        # Keep reading stdout so the process never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def stop(self) -> int:
        """SIGTERM, then the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


# -- the load ------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One run of the load against one server."""

    sends: int
    seconds: float
    message_ids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        """Accepted sends per second."""
        return len(self.message_ids) / self.seconds


class BenchSandbox:
    """The sandbox a benchmark sends to: embedded in this process, or in a process of its
    own (``process=True``, so that its work does not share this process's GIL)."""

    def __init__(self, data_dir: Path, *, process: bool = False, latency_ms: int = 0) -> None:
        from netcore_desktop.sandbox import EmbeddedSandbox, SandboxConfig

        self.embedded: EmbeddedSandbox | None = None
        self.server: Server | None = None
        if process:
            self.server = Server(
                [sys.executable, "-m", "netcore_desktop", "sandbox", "--api-key", API_KEY,
                 "--data-dir", str(data_dir), "--latency-ms", str(latency_ms)],
                "Netcore sandbox API:",
            )
            self.base_url, self.api_key = self.server.base_url, API_KEY
        else:
            self.embedded = EmbeddedSandbox(
                SandboxConfig(data_dir=data_dir, latency_ms=latency_ms)
            ).start()
            self.base_url, self.api_key = self.embedded.base_url, self.embedded.api_key

    def stop(self) -> None:
        """Stop the sandbox, wherever it runs."""
        if self.embedded is not None:
            self.embedded.stop()
        if self.server is not None:
            self.server.stop()


def run_load(base_url: str, bodies: Sequence[Sequence[bytes]]) -> RunResult:
    """One keep-alive client per thread, each posting its bodies; wall time of them all."""
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    barrier = threading.Barrier(len(bodies) + 1)
    ids: list[list[str]] = [[] for _ in bodies]
    failures: list[str] = []

    def worker(index: int) -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
            client.get("/")  # open the connection before the clock starts
            barrier.wait()
            mine = ids[index]
            for body in bodies[index]:
                response = client.post("/v6/mail/send", content=body)
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                mine.append(response.json()["data"]["message_id"])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    flat = [m for chunk in ids for m in chunk]
    return RunResult(sum(len(b) for b in bodies), seconds, flat, failures)


def _bodies(threads: int, per_thread: int) -> list[list[bytes]]:
    return [
        [make_body(f"nd-{uuid.uuid4().hex}") for _ in range(per_thread)] for _ in range(threads)
    ]


@dataclass
class BenchResult:
    """Everything one benchmark run measured and checked."""

    sandbox: list[float]
    baseline: list[float]
    sent_ids: list[str]
    stored_ids: set[str]
    exit_code: int
    failures: list[str]
    http_impl: str
    #: Transactions the sandbox committed, and the writes they held (group commit).
    commits: int = 0
    writes: int = 0

    @property
    def all_recorded(self) -> bool:
        """Every id a client got is stored, and nothing else is."""
        return set(self.sent_ids) == self.stored_ids and len(self.sent_ids) == len(
            self.stored_ids
        )


def run_benchmark(
    threads: int = 8, per_thread: int = 400, runs: int = 3, baseline: bool = True
) -> BenchResult:
    """Run the sandbox and the baseline ``runs`` times each, interleaved; check the store."""
    from netcore_desktop.sandbox.runner import _http_impl

    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as data_dir:
        sandbox = Server(
            [sys.executable, "-m", "netcore_desktop", "sandbox", "--api-key", API_KEY,
             "--data-dir", data_dir],
            "Netcore sandbox API:",
        )
        base = (
            Server([sys.executable, "-m", "tests.benchmarks.bench_sandbox", "--serve-baseline"],
                   "Baseline API:")
            if baseline
            else None
        )
        sandbox_rates: list[float] = []
        baseline_rates: list[float] = []
        sent: list[str] = []
        failures: list[str] = []
        try:
            # A short warm-up of each, so that first-call costs are not measured.
            warm = run_load(sandbox.base_url, _bodies(threads, 10))
            sent += warm.message_ids
            failures += warm.failures
            if base is not None:
                run_load(base.base_url, _bodies(threads, 10))
            for _ in range(runs):
                if base is not None:
                    baseline_rates.append(run_load(base.base_url, _bodies(threads, per_thread))
                                          .per_second)
                result = run_load(sandbox.base_url, _bodies(threads, per_thread))
                sandbox_rates.append(result.per_second)
                sent += result.message_ids
                failures += result.failures
            store = httpx.get(sandbox.base_url + "/sandbox/stats").json()["store"]
        finally:
            if base is not None:
                base.stop()
            exit_code = sandbox.stop()
        with sqlite3.connect(Path(data_dir) / "sandbox.sqlite3") as conn:
            stored = {r[0] for r in conn.execute("SELECT message_id FROM messages")}
        conn.close()
    return BenchResult(sandbox_rates, baseline_rates, sent, stored, exit_code, failures,
                       _http_impl(), store["commits"], store["writes"])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; exit 1 if a send was lost or refused."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--per-thread", type=int, default=400, help="sends per thread per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_baseline:
        _serve_baseline()
        return 0
    result = run_benchmark(args.threads, args.per_thread, args.runs)
    print_table(
        f"Sandbox: {args.threads} keep-alive httpx clients, {BODY_BYTES}-byte bodies,"
        f" {args.threads * args.per_thread} sends per run, uvicorn http={result.http_impl}"
        f" ({os.cpu_count()} CPUs)",
        [
            Row("baseline: starlette returns 200", result.baseline),
            Row("sandbox: /v6/mail/send, validated + stored", result.sandbox),
        ],
        "sends/s",
        baseline="baseline: starlette returns 200",
    )
    print(
        f"recorded: {len(result.stored_ids)} stored of {len(result.sent_ids)} accepted"
        f" ({'all' if result.all_recorded else 'MISSING SOME'}); sandbox exit code"
        f" {result.exit_code}; refused: {len(result.failures)}; group commit:"
        f" {result.writes} writes in {result.commits} transactions"
        f" ({result.writes / max(result.commits, 1):.1f} per commit)"
    )
    return 0 if result.all_recorded and not result.failures and result.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
