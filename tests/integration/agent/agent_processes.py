"""Real agent processes for tests: `python -m farm_agent` as the launcher starts it."""

import asyncio
import os
import signal
import sys
from pathlib import Path

from farm_core.free_ports import free_port
from tests.helpers import TEST_PUBLIC_KEY


class AgentProcesses:
    """Starts `python -m farm_agent` as the launcher does; stops what still runs at the end."""

    STOP_WITHIN_SECONDS = 30

    def __init__(self, nats_url: str) -> None:
        self._nats_url = nats_url
        self._started: list[asyncio.subprocess.Process] = []

    async def start(
        self, home: Path, agent_id: str, **variables: str
    ) -> asyncio.subprocess.Process:
        """An agent `agent_id` in FARM_HOME `home` (its output in `home/<id>.log`)."""
        env = {
            **os.environ,
            "FARM_HOME": str(home),
            "NATS_URL": self._nats_url,
            "FARM_IDENTITY_PUBLIC_KEY": TEST_PUBLIC_KEY,
            "FARM_GRACE_SECONDS": "20",
            "FARM_AGENT_ID": agent_id,
            "FARM_AGENT_PORT": str(free_port()),
            "FARM_AGENT_METRICS_PORT": "0",
            "FARM_AGENT_SESSION_PORT": "0",
            "FARM_AGENT_HEARTBEAT_SECONDS": "0.3",
            "FARM_AGENT_PAGE_HEAP_MB": "128",
            "FARM_AGENT_ALLOW": "127.0.0.0/8",
            **variables,
        }
        await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
        with (home / f"{agent_id}.log").open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "farm_agent", env=env, stdout=log, stderr=log
            )
        self._started.append(process)
        return process

    async def stop_all(self) -> None:
        """SIGTERM to each agent still running (it removes its files), SIGKILL past the time."""
        for process in self._started:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self._started:
            try:
                await asyncio.wait_for(process.wait(), self.STOP_WITHIN_SECONDS)
            except TimeoutError:
                process.send_signal(signal.SIGKILL)
                await process.wait()
