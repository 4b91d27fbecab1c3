"""`python -m farm_mcp`: serves the MCP service until SIGTERM."""

from farm_mcp.server import serve
from farm_mcp.settings import McpSettings


def main() -> None:
    """Reads the settings from the environment and serves."""
    serve(McpSettings())


if __name__ == "__main__":
    main()
