"""Fault injection: forced statuses, random 500s, dropped connections, latency, seeds."""

from __future__ import annotations

import time

import httpx
import pytest

from netcore_desktop.sandbox import EmbeddedSandbox

from .conftest import SandboxFactory, fields, payload, v5, v6


def _send(api: httpx.Client, sandbox: EmbeddedSandbox, **kw: object) -> httpx.Response:
    return api.post("/v6/mail/send", json=payload(**kw), headers=v6(sandbox))


def test_forced_status_answers_the_next_n_sends_then_stops(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    sandbox.force_status(500, 2)
    codes = [_send(api, sandbox).status_code for _ in range(3)]
    assert codes == [500, 500, 200]
    assert len(sandbox.messages()) == 1
    assert sandbox.stats()["responses"] == {"500": 2, "200": 1}


@pytest.mark.parametrize(("code", "field"), [(401, "Authorization"), (403, "Authorization"),
                                             (400, "request"), (503, "server")])
def test_forced_error_has_the_contract_error_body(
    sandbox: EmbeddedSandbox, api: httpx.Client, code: int, field: str
) -> None:
    sandbox.force_status(code, 1)
    response = _send(api, sandbox)
    assert response.status_code == code
    assert fields(response) == [field]
    assert sandbox.messages() == []


def test_forced_401_on_v5_names_the_api_key_header(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    sandbox.force_status(401, 1)
    response = api.post("/v5.1/mail/send", json=payload(), headers=v5(sandbox))
    assert response.status_code == 401
    assert fields(response) == ["api_key"]


def test_forced_429_and_503_carry_retry_after(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    sandbox.force_status(429, 1)
    assert _send(api, sandbox).headers["retry-after"] == "1"


def test_forced_202_is_queued_and_recorded(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    sandbox.force_status(202, 1)
    response = _send(api, sandbox, token="nd-q")
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    (stored,) = sandbox.messages(token="nd-q")
    assert stored["status"] == "queued"


def test_fail_rate_one_answers_500_with_the_error_body(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    sandbox.set_faults(fail_rate=1.0)
    response = _send(api, sandbox)
    assert response.status_code == 500
    assert fields(response) == ["server"]
    assert sandbox.messages() == []


def test_drop_rate_one_closes_the_connection_without_an_answer(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    sandbox.set_faults(drop_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        _send(api, sandbox)
    assert sandbox.messages() == []
    assert sandbox.stats()["responses"] == {"dropped": 1}
    sandbox.set_faults(drop_rate=0.0)
    # The client reconnects by itself; the sandbox is fine.
    assert _send(api, sandbox).status_code == 200


def test_latency_delays_every_answer(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    sandbox.set_faults(latency_ms=300)
    start = time.perf_counter()
    assert _send(api, sandbox).status_code == 200
    assert time.perf_counter() - start >= 0.3


def _statuses(sandbox: EmbeddedSandbox, n: int) -> list[int]:
    with httpx.Client(base_url=sandbox.base_url, headers=v6(sandbox)) as api:
        return [api.post("/v6/mail/send", json=payload()).status_code for _ in range(n)]


def test_same_seed_fails_the_same_calls(sandbox_factory: SandboxFactory) -> None:
    first = _statuses(sandbox_factory(fail_rate=0.5, seed=7), 24)
    second = _statuses(sandbox_factory(fail_rate=0.5, seed=7), 24)
    assert first == second
    assert set(first) == {200, 500}


def test_faults_over_http_get_and_post(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    assert api.get("/sandbox/faults").json() == {
        "fail_rate": 0.0,
        "latency_ms": 0,
        "drop_rate": 0.0,
        "daily_limit": None,
        "seed": None,
        "force_status": None,
    }
    answer = api.post(
        "/sandbox/faults", json={"force_status": {"code": 401, "count": 2}, "daily_limit": 5}
    )
    assert answer.status_code == 200
    assert answer.json()["force_status"] == {"code": 401, "count": 2}
    assert answer.json()["daily_limit"] == 5
    assert [_send(api, sandbox).status_code for _ in range(3)] == [401, 401, 200]
    assert api.get("/sandbox/faults").json()["force_status"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"fail_rate": 1.5}, "fail_rate"),
        ({"drop_rate": "x"}, "drop_rate"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"daily_limit": 1.5}, "daily_limit"),
        ({"force_status": {"code": 302}}, "force_status.code"),
        ({"force_status": {"code": 500, "count": -1}}, "force_status.count"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_bad_fault_settings_are_a_named_400_and_change_nothing(
    sandbox: EmbeddedSandbox, api: httpx.Client, change: dict[str, object], field: str
) -> None:
    before = api.get("/sandbox/faults").json()
    response = api.post("/sandbox/faults", json={"fail_rate": 0.5, **change})
    assert response.status_code == 400
    assert fields(response) == [field]
    assert api.get("/sandbox/faults").json() == before


def test_set_faults_from_python_refuses_bad_values(sandbox: EmbeddedSandbox) -> None:
    with pytest.raises(ValueError):
        sandbox.set_faults(fail_rate=2.0)
    with pytest.raises(ValueError):
        sandbox.force_status(302, 1)


def test_fault_flags_at_start_apply(sandbox_factory: SandboxFactory) -> None:
    sandbox = sandbox_factory(fail_rate=1.0)
    assert _statuses(sandbox, 2) == [500, 500]
    sandbox.reset_faults()  # back to the config: still failing
    assert _statuses(sandbox, 1) == [500]
    sandbox.set_faults(fail_rate=0.0)
    assert _statuses(sandbox, 1) == [200]
