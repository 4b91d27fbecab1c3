"""The multi-host farm of the fault tests (tests/netns_farm.py), started for bench/scale.py.

The farm and its hosts are the tests' own code, imported from the project's `tests`
package; only its settings differ: the bench's (harness.BENCH_ENV and the agents' as
given), streams kept three times as in the fault tests.
"""

import contextlib
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from farm_cli.launcher.config import find_project_root

from harness import Report, bench_config

ROOT = find_project_root(Path(__file__).parent)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.netns import BRIDGE_ADDRESS, Hosts, NamespacesUnavailable  # noqa: E402
from tests.netns_farm import AGENT_HOSTS, POSTGRES_BIN, NetnsFarm, layout  # noqa: E402

__all__ = ["BRIDGE_ADDRESS", "netns_farm"]

# How long a stopped agent may take to drain (it has no task by then).
AGENT_STOP_SECONDS = 30.0


@contextlib.contextmanager
def netns_farm(
    agent_env: dict[str, str], report: Report
) -> Iterator[tuple[NetnsFarm, Callable[[str], None]]]:
    """The namespace farm with all its agent hosts, and a function that stops one agent.

    Raises SystemExit with the reason where namespaces or PostgreSQL are not available.
    """
    if not POSTGRES_BIN:
        raise SystemExit("--netns: no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    hosts = Hosts()
    home = Path(tempfile.mkdtemp(prefix="farm-scale-ns-"))
    try:
        try:
            layout(hosts)
        except NamespacesUnavailable as reason:
            raise SystemExit(f"--netns: no network namespaces here: {reason}") from reason
        config = bench_config(
            home,
            len(AGENT_HOSTS),
            agent_allow=f"{BRIDGE_ADDRESS}/32",
            service_env={**agent_env, "FARM_NATS_REPLICAS": "3"},
        )
        farm = NetnsFarm(hosts, config)
        report(f"starting the namespace farm ({len(AGENT_HOSTS)} agent hosts)")
        farm.start()
        try:

            def stop_agent(name: str) -> None:
                process = farm.processes[name]
                process.signal(signal.SIGTERM)
                process.stop(timeout=AGENT_STOP_SECONDS)

            yield farm, stop_agent
        finally:
            farm.stop()
    finally:
        hosts.remove()
        shutil.rmtree(home, ignore_errors=True)
