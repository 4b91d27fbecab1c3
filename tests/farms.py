"""The configuration of a whole test farm, shared by the fixtures that start one."""

from pathlib import Path

from farm_cli.launcher.config import FarmConfig, FarmPorts, find_project_root

ROOT = find_project_root(Path(__file__).parent)


def whole_farm_config(home: Path, agents: int = 2) -> FarmConfig:
    """Every process of a farm on free ports, its agents allowed to reach the test pages.

    `home` should be a short path: Chromium's sockets live under FARM_HOME/agents/<id>/tmp.
    Change the rest with dataclasses.replace().
    """
    return FarmConfig(
        root=ROOT,
        home=home,
        ports=FarmPorts.free(),
        agents=agents,
        # The test pages (tests/pages.py) are served on 127.0.0.1.
        agent_allow="127.0.0.0/8",
        # Test data is thrown away: no need to wait out weed's slow graceful stop.
        seaweedfs_stop_timeout=2.0,
    )
