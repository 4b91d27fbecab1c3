"""The configuration of a whole test farm, shared by the fixtures that start one."""

from dataclasses import replace
from pathlib import Path

from farm_cli.launcher.config import FarmConfig, find_project_root
from farm_cli.launcher.ports import FarmPorts
from tests.postgres import FARM_DATABASES

ROOT = find_project_root(Path(__file__).parent)

# How long a traced test farm's processes, Envoy too, hold spans before sending them
# (the SDK's default and Envoy's are 5 s): tests read them soon after the work.
TEST_SPAN_EXPORT_DELAY_MS = 100
# How long a test farm's Envoy holds its access log lines before writing them (its
# default is 10 s): tests read a request's line soon after the request.
TEST_ENVOY_LOG_FLUSH_MS = 100


# Short waits everywhere, so that a redelivery, a retry or a lost attempt takes seconds,
# not minutes: the fault-injection farms (test_chaos.py, test_netns_faults.py) add theirs.
QUICK_RECOVERY_ENV = {
    "FARM_AGENT_IN_PROGRESS_SECONDS": "1",
    "FARM_AGENT_RETRY_DELAY_SECONDS": "0.5",
    "FARM_AGENT_RETRY_BASE_SECONDS": "0.2",
    "FARM_AGENT_RETRY_MAX_SECONDS": "2",
    # A redelivered task waits for its living attempt while that one's heartbeat (every
    # second) is younger than 4 s, not 15; a cut agent's tasks go elsewhere after that.
    "FARM_AGENT_HEARTBEAT_SECONDS": "1",
    "FARM_AGENT_HOLDER_LOST_SECONDS": "4",
    # Every task visits one page host: per-host politeness must not be what limits a batch.
    "FARM_AGENT_HOST_MAX_CONCURRENCY": "16",
    "FARM_AGENT_HOST_MAX_RATE": "100",
    "FARM_SCHEDULER_REPUBLISH_INTERVAL_SECONDS": "1",
    "FARM_SCHEDULER_REPUBLISH_GRACE_SECONDS": "2",
    # The grace must be above it (the scheduler refuses to start otherwise).
    "FARM_SCHEDULER_PUBLISH_TIMEOUT_SECONDS": "1",
    "FARM_SCHEDULER_WATCH_POLL_SECONDS": "1",
    "FARM_GRACE_SECONDS": "2",
}


def whole_farm_config(home: Path, agents: int = 2) -> FarmConfig:
    """Every process of a farm on free ports, its agents allowed to reach the test pages.

    `home` should be a short path: Chromium's sockets live under FARM_HOME/agents/<id>/tmp.
    Its metadata is in SQLite, or in a fresh PostgreSQL database of its own under
    FARM_TEST_DATABASE=postgres. Change the rest with dataclasses.replace().
    """
    return FarmConfig(
        root=ROOT,
        home=home,
        ports=FarmPorts.free(),
        agents=agents,
        # The test pages (tests/pages.py) are served on 127.0.0.1.
        agent_allow="127.0.0.0/8",
        # Test data is thrown away: SIGKILL weed half a second after SIGTERM (its
        # graceful stop never ends sooner than 15 s; the launcher's default gives 2 s).
        seaweedfs_stop_timeout=0.5,
        envoy_log_flush_ms=TEST_ENVOY_LOG_FLUSH_MS,
        database_url=FARM_DATABASES.new(),
    )


def traced_farm_config(home: Path, agents: int = 1) -> FarmConfig:
    """A whole farm that keeps every span: its trace sink (as `farm up --traces`) on a free
    port, every service and Envoy sending to it within a tenth of a second."""
    config = whole_farm_config(home, agents)
    return replace(
        config,
        traces=True,
        envoy_trace_flush_ms=TEST_SPAN_EXPORT_DELAY_MS,
        service_env={
            **config.service_env,
            "OTEL_BSP_SCHEDULE_DELAY": str(TEST_SPAN_EXPORT_DELAY_MS),
            # A retried attempt comes back within a second.
            "FARM_AGENT_RETRY_BASE_SECONDS": "0.2",
        },
    )
