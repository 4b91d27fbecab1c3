"""Playwright's driver (node): the options it starts with, and its idle collection at work."""

import os
import subprocess
from pathlib import Path

import playwright
import pytest

from farm_agent.browser.driver import IDLE_COLLECTOR, driver_environment
from farm_agent.browser.pool import BrowserPool
from farm_agent.metrics import process_tree
from farm_agent.settings import AgentSettings
from tests.integration.agent.conftest import HAVE_CHROMIUM, SettingsFactory

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]


# Playwright's own node, which runs its driver.
DRIVER_NODE = Path(playwright.__file__).parent / "driver" / "node"
# Leaves a few MiB of garbage, as a task does, then idles; says whether node collected
# it within argv[2] ms. The registry is global: a registry that is garbage itself
# would never call back.
GARBAGE_PROBE = """
globalThis.registry = new FinalizationRegistry(() => {
  console.log('collected');
  process.exit(0);
});
let work = Array.from({ length: 50000 }, (_, i) => ({ i, text: 'x'.repeat(64) + i }));
globalThis.registry.register(work, 'work');
work = null;
setTimeout(() => {
  console.log('kept');
  process.exit(0);
}, Number(process.argv[2]));
"""


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


def _garbage_after(settings: AgentSettings, scratch: Path, within_ms: int) -> str:
    """Runs the probe in node as the agent starts its driver: "collected" or "kept"."""
    probe = scratch / "probe.js"
    probe.write_text(GARBAGE_PROBE)
    done = subprocess.run(
        [str(DRIVER_NODE), str(probe), str(within_ms)],
        env={**os.environ, **driver_environment(settings, scratch)},
        capture_output=True,
        text=True,
        timeout=within_ms / 1000 + 30,
        check=True,
    )
    return done.stdout.strip()


def test_an_idle_driver_collects_the_garbage_its_last_work_left(
    tmp_path: Path, make_settings: SettingsFactory
) -> None:
    # Without the collector node keeps it: V8 collects only as it allocates.
    assert _garbage_after(make_settings(driver_idle_gc_seconds=0), tmp_path, 1500) == "kept"
    # With it, two looks at the heap (0.2 s apart) after the work stopped are enough.
    collecting = make_settings(driver_idle_gc_seconds=0.2)
    assert _garbage_after(collecting, tmp_path, 10_000) == "collected"
