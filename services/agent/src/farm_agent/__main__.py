"""Starts the agent: `python -m farm_agent`."""

import asyncio

from farm_agent.server import AgentService
from farm_agent.settings import AgentSettings
from farm_core.server import serve


def main() -> None:
    """Reads the settings from the environment and serves until SIGTERM."""
    settings = AgentSettings()
    asyncio.run(serve(AgentService(settings), settings, settings.port, settings.metrics_port))


if __name__ == "__main__":
    main()
