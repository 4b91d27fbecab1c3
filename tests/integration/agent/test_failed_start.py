"""An agent whose start fails on NATS: it raises at the deadline and leaves nothing running.

The NATS URL is a loopback socket that takes connections and never answers (as a
nats-server paused or wedged): the agent's connect waits for the server's INFO until
FARM_NATS_START_TIMEOUT_SECONDS, after the browser pool has started.
"""

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm_agent.metrics import process_tree
from farm_agent.server import AgentService
from farm_core.nats_start import NatsStartTimeout
from tests.integration.agent.conftest import CHROMIUM, HAVE_CHROMIUM, SettingsFactory

pytestmark = pytest.mark.integration

START_TIMEOUT_SECONDS = 1.0


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A listening socket on loopback that never accepts a connection by itself."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    try:
        yield listener
    finally:
        listener.close()


def still_open(listener: socket.socket) -> list[str]:
    """The connections made to `listener` that their client has not closed."""
    found: list[str] = []
    while True:
        try:
            connection, address = listener.accept()
        except BlockingIOError:
            return found
        with connection:
            connection.setblocking(False)
            try:
                if connection.recv(1) == b"":
                    continue  # the client closed it
            except BlockingIOError:
                pass  # nothing to read and no end: still open
            found.append(f"{address[0]}:{address[1]}")


def processes_under(folder: str) -> list[int]:
    """This process's descendants whose command line names `folder` (the agent's browsers)."""
    found: list[int] = []
    for pid in process_tree(os.getpid()) - {os.getpid()}:
        with contextlib.suppress(OSError):
            if folder in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                found.append(pid)
    return found


async def test_an_agent_whose_nats_never_answers_fails_its_start_and_leaves_nothing_running(
    silent_server: socket.socket, make_settings: SettingsFactory
) -> None:
    if not HAVE_CHROMIUM:
        pytest.skip(f"no Chromium at {CHROMIUM}")
    host, port = silent_server.getsockname()
    settings = make_settings(
        NATS_URL=f"nats://{host}:{port}",
        FARM_NATS_START_TIMEOUT_SECONDS=START_TIMEOUT_SECONDS,
        id="failed-start",
    )
    service = AgentService(settings, on_drain_notice=lambda: None)
    tasks_before = asyncio.all_tasks()

    with pytest.raises(NatsStartTimeout):
        # Far above the start's deadline: only a start that hangs reaches it.
        async with asyncio.timeout(60):
            await service.start()

    left = asyncio.all_tasks() - tasks_before - {asyncio.current_task()}
    assert not left, left
    assert processes_under(str(settings.home)) == []
    assert still_open(silent_server) == []
