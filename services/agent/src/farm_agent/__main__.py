"""Starts the agent: `python -m farm_agent`."""

import asyncio

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
