"""Fixtures for the launcher's tests: a FarmConfig on free ports, an Envoy before fake services."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from farm_cli.launcher.config import FarmConfig, FarmPorts, find_project_root
from farm_cli.launcher.envoy import (
    Endpoint,
    EnvoySettings,
    envoy_ready,
    envoy_spec,
    write_envoy_config,
)
from farm_cli.launcher.processes import ManagedProcess, free_port, wait_until
from tests.unit.cli.fake_services import FakeFarm, start_fake_farm

ROOT = find_project_root(Path(__file__).parent)


@pytest.fixture
def infra_config(farm_home: Path) -> FarmConfig:
    """A farm of NATS, SeaweedFS and Envoy only, on free ports, in a fresh FARM_HOME."""
    return FarmConfig(
        root=ROOT,
        home=farm_home,
        ports=FarmPorts.free(),
        start_services=False,
        # Test data is thrown away: no need to wait out weed's slow graceful stop.
        seaweedfs_stop_timeout=2.0,
    )


@dataclass(frozen=True)
class EdgeUnderTest:
    """Envoy with the farm's configuration in front of fake services."""

    url: str
    grpc_target: str
    fakes: FakeFarm
    process: ManagedProcess


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeUnderTest]:
    """The rendered Envoy before fake auth (with ext_authz), storage and scheduler."""
    state = tmp_path_factory.mktemp("edge")
    fakes = start_fake_farm()
    settings = EnvoySettings(
        listen_port=free_port(),
        admin_port=free_port(),
        descriptor_path=ROOT / "envoy" / "farm.binpb",
        upstreams={
            "auth": [Endpoint("127.0.0.1", fakes.auth_port)],
            "storage": [Endpoint("127.0.0.1", fakes.storage_port)],
            "scheduler": [Endpoint("127.0.0.1", fakes.scheduler_port)],
        },
    )
    config = write_envoy_config(ROOT / "envoy" / "envoy.yaml.j2", settings, state / "envoy.yaml")
    process = ManagedProcess(envoy_spec(config), state, state)
    process.start()
    try:
        wait_until(lambda: envoy_ready(settings), timeout=30, what="envoy", process=process)
        target = f"127.0.0.1:{settings.listen_port}"
        yield EdgeUnderTest(f"http://{target}", target, fakes, process)
    finally:
        process.stop(timeout=5)
        fakes.stop()
