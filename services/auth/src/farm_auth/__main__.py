"""`python -m farm_auth`: serves the auth service until SIGTERM."""

from farm_auth.server import AuthService
from farm_auth.settings import AuthSettings
from farm_core.runtime import run_process
from farm_core.server import serve
from farm_core.settings_load import load_settings


def main() -> None:
    """Reads the settings from the environment and serves."""
    settings = load_settings(AuthSettings, "auth")
    run_process(
        serve(AuthService(settings), settings, settings.port, settings.metrics_port),
        settings.event_loop,
    )


if __name__ == "__main__":
    main()
