"""A part of the farm stopped by someone else's SIGTERM (not `farm down`) comes back.

The farm is supervised as `farm up` does, restarting after 0.2 s (chaos.py's settings).
A service answers SIGTERM by draining and exiting 0, which the launcher once took for a
stop on purpose: the part stayed down until the farm was started again. What comes
back is the process, whatever database it uses: not run again on PostgreSQL
(database_neutral).
"""

import os
import secrets
import signal
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.health import grpc_serving
from farm_cli.launcher.supervisor import Phase
from tests.e2e.chaos import admin_http, create, final, supervised_chaos_farm, until
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral, pytest.mark.slow]


@pytest.fixture(scope="module")
def supervised_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """The module's farm, supervised in the background, stopped by PID afterwards."""
    with supervised_chaos_farm(tmp_path_factory.mktemp("restarts")) as farm:
        yield farm


@pytest.fixture
async def http(supervised_farm: LocalFarm) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the farm's Envoy with the admin key."""
    async with admin_http(supervised_farm) as client:
        yield client


@pytest.mark.timeout(150)
async def test_a_scheduler_sent_sigterm_by_hand_is_restarted_and_serves_tasks(
    supervised_farm: LocalFarm, http: httpx.AsyncClient, site: Site
) -> None:
    farm = supervised_farm
    first_pid = farm.process("scheduler").pid
    # Not `farm down` nor the launcher: someone else's SIGTERM, by PID. It drains, exits 0.
    os.kill(first_pid, signal.SIGTERM)

    def back_up() -> bool:
        return farm.process("scheduler").pid != first_pid and farm.phase("scheduler") is Phase.UP

    await until(back_up, within=90, message="the scheduler was not started again")
    assert farm.supervisor.restarts("scheduler") == 1
    assert (farm.run_dir / "scheduler.pid").read_text().strip() == str(
        farm.process("scheduler").pid
    )
    assert grpc_serving(f"127.0.0.1:{farm.config.ports.scheduler}")
    task_id = await create(http, site.url(f"/?sigterm={secrets.token_hex(4)}"))
    assert (await final(http, task_id))["status"] == "TASK_STATUS_SUCCEEDED"
