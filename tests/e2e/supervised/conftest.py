"""The supervised farm these modules share: two agents, the chaos tests' short waits.

test_agent_restart.py restarts and drains agents through the `farm` command,
test_chaos.py kills and stops agents, the scheduler, NATS, SeaweedFS and storage, and
test_session_faults.py kills and drains the agents of sessions. Each test checks only
its own tasks and sessions, and counts restarts from what they were when it began; the
supervisor brings back what a test killed. So they share one farm, started once
(package-scoped) and stopped after the last of them; the package is one unit of work
for pytest-xdist (tests/farm_scopes.py). The modules run in the order of their names:
a drain that leaves an agent ended (test_session_faults.py's last test) comes last.
"""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.supervised.chaos import admin_http, supervised_chaos_farm

# The session tests' waits: a session whose agent stopped beating is closed within a few
# seconds, not the default 15, and a drained agent's sessions after a second.
SESSION_FAULT_ENV = {
    "FARM_SCHEDULER_SESSION_AGENT_LOST_SECONDS": "3",
    "FARM_SCHEDULER_SESSION_SWEEP_INTERVAL_SECONDS": "0.5",
    "FARM_AGENT_SESSION_DRAIN_SECONDS": "1",
}


@pytest.fixture(scope="package")
def chaos_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """The package's farm, supervised in the background, stopped by PID afterwards."""
    with supervised_chaos_farm(tmp_path_factory.mktemp("chaos"), SESSION_FAULT_ENV) as farm:
        yield farm


@pytest.fixture
def storage_up(chaos_farm: LocalFarm) -> None:
    """Storage runs as a test starts: a storage outage test may end with it stopped.

    Started again before the next test that runs tasks (their screenshots are stored),
    not after the outage test: the session tests that may come next store nothing, and
    the last test's farm stops without waiting for it.
    """
    if not chaos_farm.process("storage").alive():
        chaos_farm.start_process("storage")


@pytest.fixture
async def http(chaos_farm: LocalFarm) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the farm's Envoy with the admin key."""
    async with admin_http(chaos_farm) as client:
        yield client
