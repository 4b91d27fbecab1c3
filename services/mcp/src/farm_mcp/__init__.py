"""The MCP service."""
