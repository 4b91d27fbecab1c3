"""Starts the agent: `python -m farm_agent`."""

import asyncio
import os

# gRPC's C core reads this when it starts. Its fork support (pthread_atfork handlers)
# is only for children that go on using gRPC without exec; every child of the agent
# execs (child_process.py), and with it on, a fork while another thread is in gRPC
# writes a plain "skipping fork() handlers" line to stderr, amid the JSON log lines.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

from farm_agent.server import AgentService
from farm_agent.settings import AgentSettings
from farm_core.runtime import run_process
from farm_core.server import serve
from farm_core.settings_load import load_settings


async def serve_agent(settings: AgentSettings) -> None:
    """Serves the agent until SIGTERM, SIGINT or a drain notice, then drains it."""
    stop_requested = asyncio.Event()
    service = AgentService(settings, on_drain_notice=stop_requested.set)
    await serve(service, settings, settings.port, settings.metrics_port, stop_requested)


def main() -> None:
    """Reads the settings from the environment and serves until SIGTERM or a drain notice."""
    settings = load_settings(AgentSettings, "agent")
    run_process(serve_agent(settings), settings.event_loop)


if __name__ == "__main__":
    main()
