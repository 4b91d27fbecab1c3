"""The traced farm these modules share: one agent, the trace sink of `farm up --traces`.

Every process and Envoy export to the launcher's OTLP/gRPC sink on a free port; the
tests read the sink's files. The modules only run tasks and sessions of their own and
find their spans by trace, task or session id, so they share one farm, started once
(package-scoped) and stopped after the last of them. The package is one unit of work
for pytest-xdist (tests/farm_scopes.py): its modules run on one worker, one farm.
"""

from collections.abc import Iterator
from dataclasses import replace

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, http_client
from tests.farms import traced_farm_config

# The shortest idle timeout the traced farm's sessions may ask for (farm default: 10 s),
# so that a session the agent closes itself closes in seconds.
SESSION_MIN_SECONDS = 3
# How often the traced farm's agent reads its sessions' clocks (farm default: 1 s).
SESSION_CHECK_SECONDS = 0.25


@pytest.fixture(scope="package")
def traced_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    """The traced farm, for every module of this package."""
    config = traced_farm_config(tmp_path_factory.mktemp("traced"))
    service_env = {
        **config.service_env,
        "FARM_SCHEDULER_SESSION_MIN_SECONDS": str(SESSION_MIN_SECONDS),
        "FARM_AGENT_SESSION_CHECK_SECONDS": str(SESSION_CHECK_SECONDS),
    }
    with LocalFarm(replace(config, service_env=service_env)) as running:
        yield running


@pytest.fixture(scope="package")
def client(traced_farm: LocalFarm) -> Iterator[Client]:
    """The traced farm's bootstrap admin key's client."""
    with http_client(traced_farm, traced_farm.admin_key) as http:
        yield Client(http, traced_farm.admin_key)
