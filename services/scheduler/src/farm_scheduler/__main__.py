"""`python -m farm_scheduler`: serves the scheduler until SIGTERM."""

import asyncio

from farm_core.server import serve
from farm_scheduler.server import SchedulerService
from farm_scheduler.settings import SchedulerSettings


def main() -> None:
    """Reads the settings from the environment and serves."""
    settings = SchedulerSettings()
    asyncio.run(serve(SchedulerService(settings), settings, settings.port, settings.metrics_port))


if __name__ == "__main__":
    main()
