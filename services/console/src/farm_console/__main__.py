"""`python -m farm_console`: serves the web console until SIGTERM."""

from farm_console.server import serve
from farm_console.settings import ConsoleSettings
from farm_core.settings_load import load_settings


def main() -> None:
    """Reads the settings from the environment and serves."""
    serve(load_settings(ConsoleSettings, "console"))


if __name__ == "__main__":
    main()
