"""A storage outage that fails fast does not spend a task's attempts, within its window.

One farm (one agent, FARM_AGENT_UPLOAD_OUTAGE_SECONDS=20). The storage service is
stopped for real (its connections refused, so every upload try fails at once with
UNAVAILABLE) while a screenshot task with maxAttempts 1 finishes its page: the agent
holds the result and keeps retrying the upload. Started again within the window, the
task succeeds on its one attempt; kept down past it, the task fails UPLOAD_FAILED
with a message that names the outage and the setting.
"""

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import fresh
from tests.e2e.test_chaos import CHAOS_ENV
from tests.farms import whole_farm_config
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OUTAGE_SECONDS = 20
# The tries the agent made before this fix: an outage longer than them failed the attempt.
OLD_TRIES = 5
FINAL = {"TASK_STATUS_SUCCEEDED", "TASK_STATUS_FAILED", "TASK_STATUS_CANCELLED"}


@pytest.fixture(scope="module")
def outage_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """The module's farm: one agent, a 20 s upload outage window."""
    config = replace(
        whole_farm_config(tmp_path_factory.mktemp("outage"), agents=1),
        service_env={**CHAOS_ENV, "FARM_AGENT_UPLOAD_OUTAGE_SECONDS": str(OUTAGE_SECONDS)},
    )
    with LocalFarm(config) as farm:
        yield farm


@pytest.fixture
async def http(outage_farm: LocalFarm) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the farm's Envoy with the admin key."""
    headers = {"authorization": f"Bearer {outage_farm.admin_key}"}
    async with httpx.AsyncClient(
        base_url=outage_farm.envoy_url, headers=headers, timeout=30
    ) as client:
        yield client


@pytest.fixture
def storage_down(outage_farm: LocalFarm) -> Iterator[LocalFarm]:
    """The farm with its storage service stopped; started again after the test if still down."""
    outage_farm.stop_process("storage")
    try:
        yield outage_farm
    finally:
        if not outage_farm.process("storage").alive():
            outage_farm.start_process("storage")


async def create(http: httpx.AsyncClient, site: Site) -> str:
    """CreateTask of a screenshot with maxAttempts 1; its id."""
    spec = fresh(
        {
            "url": site.url(f"/?outage={secrets.token_hex(4)}"),
            "screenshot": {},
            "viewport": {"width": 640, "height": 400},
            "maxAttempts": 1,
        }
    )
    response = await http.post("/v1/tasks", json=spec)
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def final(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    """The task once it is final (90 s at most)."""
    task: dict[str, Any] = {}

    async def ended() -> bool:
        nonlocal task
        response = await http.get(f"/v1/tasks/{task_id}")
        task = response.json() if response.status_code == 200 else {}
        return task.get("status") in FINAL

    await assert_eventually(ended, within=90, interval=0.5, message=lambda: f"not final: {task}")
    return task


def upload_retries(farm: LocalFarm, task_id: str) -> int:
    """How often the agent has logged that storage was unavailable for the task's upload."""
    log = (farm.log_dir / "agent-1.log").read_text(errors="replace")
    return log.count(f"storage unavailable for screenshot of task {task_id}")


@pytest.mark.timeout(180)
async def test_a_short_storage_outage_does_not_spend_the_tasks_attempt(
    storage_down: LocalFarm, http: httpx.AsyncClient, site: Site
) -> None:
    task_id = await create(http, site)

    # Storage stays down past the tries an upload used to get, then comes back.
    await assert_eventually(
        lambda: upload_retries(storage_down, task_id) > OLD_TRIES,
        within=60,
        interval=0.2,
        message="the agent did not keep retrying the upload",
    )
    storage_down.start_process("storage")

    task = await final(http, task_id)
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    assert task["attempts"] == 1
    assert [record["attempt"] for record in task.get("attemptHistory", [])] in ([], [1])
    [artifact] = task["result"]["artifacts"]
    content = await http.get(f"/v1/artifacts/{artifact['id']}:content")
    assert content.status_code == 200
    assert content.content.startswith(b"\x89PNG")


@pytest.mark.timeout(180)
async def test_storage_down_past_the_window_fails_the_task_saying_so(
    storage_down: LocalFarm, http: httpx.AsyncClient, site: Site
) -> None:
    task_id = await create(http, site)

    task = await final(http, task_id)

    assert task["status"] == "TASK_STATUS_FAILED", task
    assert task["error"]["code"] == "UPLOAD_FAILED"
    message = task["error"]["message"]
    assert "UNAVAILABLE" in message
    assert f"{OUTAGE_SECONDS} s is the longest outage" in message
    assert "FARM_AGENT_UPLOAD_OUTAGE_SECONDS" in message, message
    assert upload_retries(storage_down, task_id) > OLD_TRIES
