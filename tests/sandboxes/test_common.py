"""The common sandbox core: fault knobs and profiles, admin endpoints, counters, injected failures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient
from starlette.types import Scope

from sandboxes.common.app import build_app, json_response
from sandboxes.common.config import SandboxConfig
from sandboxes.common.faults import PROFILES, FaultConfig, FaultState, profile


class _EchoRenderer:
    def server_error(self) -> Response:
        return json_response({"error": "server"}, 500)

    def rate_limited(self, retry_after_seconds: int) -> Response:
        return json_response({"error": "rate"}, 429, {"Retry-After": str(retry_after_seconds)})

    def lock_conflict(self) -> Response | None:
        return json_response({"error": "locked"}, 409)


class _TinyBackend:
    """A minimal system: one read route and one write route, a counter as its state."""

    name = "tiny"
    renderer = _EchoRenderer()

    def __init__(self) -> None:
        self.items = 0
        self.started = False

    def routes(self) -> Sequence[BaseRoute]:
        async def read(request: Request) -> Response:
            return json_response({"items": self.items})

        async def write(request: Request) -> Response:
            self.items += 1
            return json_response({"items": self.items}, 201)

        return [Route("/items", read, methods=["GET"]), Route("/items", write, methods=["POST"])]

    def admin_routes(self) -> Sequence[BaseRoute]:
        return []

    def client_of(self, scope: Scope) -> str:
        headers = dict(scope["headers"])
        return headers.get(b"x-client", b"anonymous").decode()

    def is_write(self, scope: Scope) -> bool:
        return scope["method"] == "POST"

    def reset(self, seed: int, scale: str) -> dict[str, Any]:
        self.items = 0
        return {"items": 0}

    def stats(self) -> dict[str, Any]:
        return {"items": self.items}

    async def startup(self) -> None:
        self.started = True

    async def shutdown(self) -> None:
        self.started = False


@pytest.fixture
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = SandboxConfig(system="tiny", port=1, data_dir=tmp_path)
    backend = _TinyBackend()
    with TestClient(build_app(config, backend, FaultState(seed=1))) as test_client:
        test_client.backend = backend  # type: ignore[attr-defined]
        yield test_client


def test_health_reports_system_and_records_when_asked(client: TestClient) -> None:
    client.post("/items")
    body = client.get("/__sandbox__/health").json()
    assert body["system"] == "tiny" and body["status"] == "ok" and body["records"] == {"items": 1}


def test_backend_background_work_runs_when_app_is_up(client: TestClient) -> None:
    assert client.backend.started  # type: ignore[attr-defined]


def test_counters_tally_requests_and_writes_by_client_when_traffic_flows(client: TestClient) -> None:
    client.get("/items", headers={"x-client": "loader"})
    client.post("/items", headers={"x-client": "sync"})
    client.post("/items", headers={"x-client": "sync"})
    counters = client.get("/__sandbox__/counters").json()
    assert counters["requests_total"] == 3
    assert counters["requests_by_client"] == {"loader": 1, "sync": 2}
    assert counters["writes_by_client"] == {"sync": 2}
    assert counters["responses_by_status"] == {"200": 1, "201": 2}
    client.post("/__sandbox__/counters/reset")
    assert client.get("/__sandbox__/counters").json()["requests_total"] == 0


def test_every_request_fails_when_server_error_rate_is_one(client: TestClient) -> None:
    assert client.put("/__sandbox__/faults", json={"server_error_rate": 1.0}).status_code == 200
    assert client.get("/items").status_code == 500
    assert client.get("/__sandbox__/health").status_code == 200  # admin paths are never faulted


def test_rate_limit_carries_retry_after_when_injected(client: TestClient) -> None:
    client.put("/__sandbox__/faults", json={"rate_limit_rate": 1.0, "retry_after_seconds": 7})
    response = client.get("/items")
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"


def test_lock_conflict_hits_only_writes_when_injected(client: TestClient) -> None:
    client.put("/__sandbox__/faults", json={"lock_error_rate": 1.0})
    assert client.get("/items").status_code == 200
    assert client.post("/items").status_code == 409


def test_faults_apply_only_to_matching_paths_when_pattern_is_set(client: TestClient) -> None:
    client.put("/__sandbox__/faults", json={"server_error_rate": 1.0, "path_pattern": "^/nothing"})
    assert client.get("/items").status_code == 200


def test_profile_is_applied_then_knobs_on_top_when_both_are_given(client: TestClient) -> None:
    body = client.put("/__sandbox__/faults", json={"profile": "flaky", "server_error_rate": 0.5}).json()
    assert body["server_error_rate"] == 0.5
    assert body["webhook_duplicate_rate"] == PROFILES["flaky"].webhook_duplicate_rate
    assert client.put("/__sandbox__/faults", json={"profile": "none"}).json()["profile"] == "none"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"server_error_rate": 2}, "between 0 and 1"),
        ({"no_such_knob": 1}, "unknown fault knob"),
        ({"profile": "nope"}, "unknown fault profile"),
        ({"latency_ms_min": 10, "latency_ms_max": 5}, "latency_ms_min"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_fault_settings_are_refused_with_reason_when_put(client: TestClient, body: Any, message: str) -> None:
    response = client.put("/__sandbox__/faults", json=body)
    assert response.status_code == 400 and message in response.json()["error"]
    assert client.get("/__sandbox__/faults").json()["server_error_rate"] == 0.0


def test_reset_wipes_state_and_counters_when_asked(client: TestClient) -> None:
    client.post("/items")
    body = client.post("/__sandbox__/reset", json={"seed": 7, "scale": "empty"}).json()
    assert body == {"system": "tiny", "seed": 7, "scale": "empty", "records": {"items": 0}}
    assert client.post("/__sandbox__/reset", json={"scale": "huge"}).status_code == 400


def test_every_named_profile_is_valid_when_loaded() -> None:
    for name in PROFILES:
        profile(name).validate()


def test_profile_copy_is_independent_when_changed() -> None:
    copy = profile("flaky")
    copy.server_error_rate = 0.9
    assert PROFILES["flaky"].server_error_rate != 0.9


def test_fault_config_round_trips_when_serialised() -> None:
    config = FaultConfig(latency_ms_max=10, token_ttl_seconds=3)
    assert FaultConfig.from_dict(config.to_dict()) == config


def test_header_names_are_sent_in_vendor_casing_when_answering(client: TestClient) -> None:
    response = client.get("/items")
    raw_names = [name for name, _ in response.headers.raw]
    assert b"Content-Type" in raw_names and b"content-type" not in raw_names


def test_ping_answers_without_counting_when_polled(client: TestClient) -> None:
    assert client.get("/__sandbox__/ping").json() == {"system": "tiny", "status": "ok"}
