"""The MCP server with every browser tool, for one transport's way of finding connections."""

from mcp.server.mcpserver import MCPServer

from farm_mcp_tools.inspect_tools import register_inspect_tools
from farm_mcp_tools.runner import Connections, ToolLimits, ToolRunner
from farm_mcp_tools.tools import register_page_tools

SERVER_NAME = "browserfarm"
INSTRUCTIONS = """\
A headless Chromium browser from browserfarm, kept for this connection (a farm session:
it opens on the first tool call and closes when the connection ends or stays idle).
Start with navigate, then snapshot to see the page's elements with references
(e.g. [ref=e5]); every selector argument takes such a reference ('e5') or a CSS
selector. screenshot answers an image; long content, PDFs and videos are links to
the farm's artifacts, fetched with the same API key. The browser reaches only what
the farm's egress rules allow (public addresses by default). A dialog (alert, confirm,
prompt) that the page opens waits: the tool's answer says so, and handle_dialog answers
it before any other tool. Downloads are refused."""


def build_server(connections: Connections, limits: ToolLimits, version: str = "") -> MCPServer:
    """An MCPServer declaring every browser tool, each run on its connection's browser."""
    server: MCPServer = MCPServer(
        SERVER_NAME, instructions=INSTRUCTIONS, version=version, log_level="WARNING"
    )
    runner = ToolRunner(connections, limits)
    register_page_tools(server, runner)
    register_inspect_tools(server, runner)
    return server
