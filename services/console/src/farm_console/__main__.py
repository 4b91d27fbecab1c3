"""`python -m farm_console`: serves the web console until SIGTERM."""

from farm_console.server import serve
from farm_console.settings import ConsoleSettings


def main() -> None:
    """Reads the settings from the environment and serves."""
    serve(ConsoleSettings())


if __name__ == "__main__":
    main()
