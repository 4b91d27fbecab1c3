"""`python -m farm_scheduler`: serves the scheduler until SIGTERM."""

from farm_core.public_api import PUBLIC_SERVICES
from farm_core.runtime import run_process
from farm_core.server import serve
from farm_core.settings_load import load_settings
from farm_scheduler.server import SchedulerService
from farm_scheduler.settings import SchedulerSettings


def main() -> None:
    """Reads the settings from the environment and serves."""
    settings = load_settings(SchedulerSettings, "scheduler")
    service = SchedulerService(settings)
    # Envoy routes server reflection to the scheduler: it answers for the whole public API.
    run_process(
        serve(
            service,
            settings,
            settings.port,
            settings.metrics_port,
            reflected_services=PUBLIC_SERVICES,
        ),
        settings.event_loop,
    )


if __name__ == "__main__":
    main()
