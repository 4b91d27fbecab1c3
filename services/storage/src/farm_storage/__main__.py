"""`python -m farm_storage`: serves the storage service until SIGTERM."""

from farm_core.runtime import run_process
from farm_core.server import serve
from farm_core.settings_load import load_settings
from farm_storage.server import StorageService
from farm_storage.settings import StorageSettings


def main() -> None:
    """Reads the settings from the environment and serves."""
    settings = load_settings(StorageSettings, "storage")
    run_process(
        serve(StorageService(settings), settings, settings.port, settings.metrics_port),
        settings.event_loop,
    )


if __name__ == "__main__":
    main()
