"""A real scheduler process whose NATS connection the server closes for good exits non-zero."""

import asyncio
import os
import sys
from pathlib import Path

import pytest

from farm_core.free_ports import free_port
from tests.helpers import TEST_PUBLIC_KEY, assert_eventually
from tests.integration.configured_nats import FARM_USER, ConfiguredNats

pytestmark = pytest.mark.integration

EXIT_WITHIN_SECONDS = 30


async def test_scheduler_whose_connection_the_server_closed_exits_non_zero_for_a_restart(
    configured_nats: ConfiguredNats, tmp_path: Path
) -> None:
    log_path = tmp_path / "scheduler.log"
    env = {
        **os.environ,
        "FARM_HOME": str(tmp_path / "home"),
        "NATS_URL": configured_nats.url,
        "NATS_USER": FARM_USER[0],
        "NATS_PASSWORD": FARM_USER[1],
        "FARM_IDENTITY_PUBLIC_KEY": TEST_PUBLIC_KEY,
        "FARM_SCHEDULER_PORT": str(free_port()),
        "FARM_SCHEDULER_METRICS_PORT": "0",
    }
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "farm_scheduler", env=env, stdout=log, stderr=log
        )
    try:
        await assert_eventually(
            lambda: b"scheduler serving gRPC" in log_path.read_bytes(),
            within=60,
            message="the scheduler did not start",
        )
        # Its user's password changed: nats-server answers -ERR 'Authorization
        # Violation' on the scheduler's connection and closes it; nats-py gives up.
        configured_nats.reload(farm_password="another-password")
        returncode = await asyncio.wait_for(process.wait(), EXIT_WITHIN_SECONDS)
        assert returncode != 0
        assert "NATS closed the connection of farm-scheduler" in log_path.read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
