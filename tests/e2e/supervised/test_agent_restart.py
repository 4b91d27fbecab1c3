"""`farm agent restart`: the agents of a running `farm up` restarted one at a time, none lost.

The farm is the real launcher's, supervised in the background as `farm up` does, with
the chaos tests' short waits (a drain's grace of 2 s: a slow task is handed back, and
runs again elsewhere without using an attempt). The command runs as an operator runs
it, from FARM_HOME alone, while a batch of slow screenshot tasks is in flight.
"""

import asyncio
import json
import secrets
from pathlib import Path

import httpx
import pytest

from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.supervisor import Phase
from farm_cli.main import main
from tests.e2e.supervised.chaos import Batch, statuses
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.database_neutral]

AGENTS = ("agent-1", "agent-2")


@pytest.fixture(scope="module")
def farm(chaos_farm: LocalFarm) -> LocalFarm:
    """The package's two agents, supervised in the background (conftest.py)."""
    return chaos_farm


@pytest.fixture
def farm_home(farm: LocalFarm, monkeypatch: pytest.MonkeyPatch) -> Path:
    """FARM_HOME of the farm, for the commands the test runs."""
    monkeypatch.setenv("FARM_HOME", str(farm.home))
    return farm.home


def farm_command(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    """Runs `farm ...` in this process: its exit code, stdout and stderr."""
    code = main(list(words))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("storage_up")
@pytest.mark.timeout(420)
async def test_restarting_every_agent_under_load_loses_no_task(
    farm: LocalFarm,
    farm_home: Path,
    http: httpx.AsyncClient,
    site: Site,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pids_before = {name: farm.process(name).pid for name in AGENTS}
    restarts_before = {name: farm.supervisor.restarts(name) for name in AGENTS}
    batch = Batch(http)
    await batch.submit(12, site.url(f"/slow?ms=1500&restart={secrets.token_hex(4)}"))
    await batch.some_reach("TASK_STATUS_RUNNING")

    code, out, err = await asyncio.to_thread(
        farm_command, capsys, "agent", "restart", "--all", "--json", "--timeout", "120"
    )

    assert code == 0, err
    outcomes = json.loads(out)
    assert [each["agent"] for each in outcomes] == list(AGENTS)
    for name in AGENTS:
        assert farm.phase(name) is Phase.UP
        assert farm.process(name).pid != pids_before[name]
        assert farm.supervisor.restarts(name) == restarts_before[name] + 1
    tasks = await batch.finished(within=240)
    assert statuses(tasks) == {"TASK_STATUS_SUCCEEDED": 12}, statuses(tasks)
    await batch.check_none_lost_none_twice(tasks)


@pytest.mark.usefixtures("storage_up")
@pytest.mark.timeout(300)
async def test_an_agent_drained_by_hand_is_started_again(
    farm: LocalFarm,
    farm_home: Path,
    http: httpx.AsyncClient,
    site: Site,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = farm_command(capsys, "agent", "drain", "agent-2")
    assert code == 0, err
    await assert_eventually(
        lambda: farm.phase("agent-2") is Phase.ENDED,
        within=120,
        message="agent-2 did not drain",
    )

    code, out, err = await asyncio.to_thread(farm_command, capsys, "agent", "restart", "agent-2")

    assert code == 0, err
    assert out.startswith("agent-2: started again, ready"), out
    assert farm.phase("agent-2") is Phase.UP
    batch = Batch(http)
    await batch.submit(4, site.url(f"/slow?ms=200&drained={secrets.token_hex(4)}"))
    tasks = await batch.finished(within=120)
    assert statuses(tasks) == {"TASK_STATUS_SUCCEEDED": 4}


def test_an_agent_the_farm_never_started_is_refused_by_name(
    farm: LocalFarm, farm_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = farm_command(capsys, "agent", "restart", "agent-9")

    assert code == 1
    assert "this farm has started no agent called 'agent-9' (it has: agent-1, agent-2)" in err
