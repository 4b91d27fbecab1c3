"""`python -m farm_mcp`: serves the MCP service until SIGTERM."""

from farm_core.settings_load import load_settings
from farm_mcp.server import serve
from farm_mcp.settings import McpSettings


def main() -> None:
    """Reads the settings from the environment and serves."""
    serve(load_settings(McpSettings, "mcp"))


if __name__ == "__main__":
    main()
