"""Playwright's driver (node): the options it starts with (its idle collector among them)."""

import os
from pathlib import Path

import pytest

from farm_agent.browser.driver import IDLE_COLLECTOR
from farm_agent.browser.pool import BrowserPool
from farm_agent.metrics import process_tree
from tests.integration.agent.conftest import HAVE_CHROMIUM, SettingsFactory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]


def _drivers() -> set[int]:
    """Node processes under this test process (Playwright's drivers)."""
    return {
        pid
        for pid in process_tree(os.getpid())
        if b"node" in Path(f"/proc/{pid}/comm").read_bytes()
    }


def _node_options(pid: int) -> str:
    for variable in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if variable.startswith(b"NODE_OPTIONS="):
            return variable.removeprefix(b"NODE_OPTIONS=").decode()
    return ""


async def test_the_drivers_node_runs_with_a_small_young_generation_and_its_collector(
    tmp_path_factory: pytest.TempPathFactory,
    make_settings: SettingsFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NODE_OPTIONS", "--no-deprecation")
    pool = BrowserPool(make_settings(FARM_HOME=tmp_path_factory.mktemp("n"), min_browsers=0))
    others = _drivers()  # drivers this test process started before (other tests')
    await pool.start()
    try:
        options = [_node_options(pid) for pid in _drivers() - others]
    finally:
        await pool.close()
    # The caller's own options are kept; the agent's own environment is left as it was.
    assert options == [
        f'--no-deprecation --max-semi-space-size=1 --expose-gc --require "{IDLE_COLLECTOR}"'
    ]
    assert os.environ["NODE_OPTIONS"] == "--no-deprecation"
