"""A bulk job run in a process of its own, so that a test can kill it with SIGKILL mid-job.

Run: ``python -m tests.core._job_child HISTORY BASE_URL JOB_ID CONCURRENCY`` with the API key
on stdin (never on the command line). It runs the job to its end and exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

from netcore_desktop.core.client import NetcoreClient, RetryPolicy
from netcore_desktop.core.contract import Region
from netcore_desktop.core.history import History
from netcore_desktop.core.jobs import JobRunner
from netcore_desktop.core.profiles import Profile
from netcore_desktop.core.secrets import SecretStore
from netcore_desktop.core.sending import SendService


def main(argv: list[str]) -> int:
    """Run the job named on the command line to its end."""
    history_path, base_url, job_id, concurrency = argv
    key = sys.stdin.readline().strip()
    profile = Profile(
        name="sbx", region=Region.CUSTOM, base_url=base_url,
        sender_email="news@mail.example.org", is_sandbox=True,
    )
    history = History(Path(history_path))
    client = NetcoreClient(
        base_url, key, retry=RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)
    )
    service = SendService(profile, SecretStore(service="netcore-desktop-job-child"), history,
                          client=client)
    runner = JobRunner(service, int(job_id), concurrency=int(concurrency))
    runner.start()
    print("started", flush=True)
    runner.wait()
    client.close()
    history.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
