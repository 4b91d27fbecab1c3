"""The MCP server with every browser tool, for one transport's way of finding connections."""

import inspect
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult
from pydantic import ValidationError

from farm_mcp_tools.capture_tools import register_capture_tools
from farm_mcp_tools.inspect_tools import register_inspect_tools
from farm_mcp_tools.runner import Connections, ToolLimits, ToolRunner
from farm_mcp_tools.tab_tools import register_tab_tools
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


class BrowserToolServer(MCPServer):
    """An MCPServer whose refusal of a tool's arguments names each bad one in a line.

    The SDK answers pydantic's text ("1 validation error for clickArguments ... For
    further information visit https://errors.pydantic.dev/..."); an assistant needs
    only which argument is wrong and why. The SDK also drops arguments a tool does
    not have, so that a misspelt one (the HTTP API's `fullPage` for `full_page`)
    would silently do nothing: they are refused too.
    """

    def tool(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        """The SDK's decorator, describing the tool by its docstring without its indentation.

        Python 3.11 keeps a method's docstring indented; the model would read the spaces.
        """
        declare = super().tool

        def registered(fn: Any) -> Any:
            description = kwargs.get("description") or inspect.cleandoc(fn.__doc__ or "")
            return declare(*args, **{**kwargs, "description": description or None})(fn)

        return registered

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """Calls the tool; arguments that do not fit its schema are a short ToolError."""
        tool = self._tool_manager.get_tool(name)
        if tool is not None:
            known = list(tool.parameters.get("properties", {}))
            unknown = [_unknown_argument(given, known) for given in arguments if given not in known]
            if unknown:
                raise ToolError(f"Error executing tool {name}: {'; '.join(unknown)}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as error:
            cause = error.__cause__
            if isinstance(error, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            problems = "; ".join(_argument_problem(problem) for problem in cause.errors())
            raise ToolError(f"Error executing tool {name}: {problems}") from cause


# How much of a refused argument's value the answer repeats.
_MAX_GIVEN_CHARS = 80


def _unknown_argument(given: str, known: list[str]) -> str:
    """Why `given` is refused: the tool's arguments, and the one meant if it is misspelt."""

    def plain(name: str) -> str:
        return name.replace("_", "").replace("-", "").lower()

    meant = [name for name in known if plain(name) == plain(given)]
    if meant:
        return f"{given}: not an argument of this tool; did you mean {meant[0]}?"
    takes = ", ".join(known) if known else "none"
    return f"{given}: not an argument of this tool (it takes: {takes})"


def _argument_problem(problem: Any) -> str:
    where = ".".join(str(part) for part in problem["loc"]) or "arguments"
    if problem["type"] == "missing":
        return f"{where}: required"
    given = repr(problem["input"])
    if len(given) > _MAX_GIVEN_CHARS:
        given = given[:_MAX_GIVEN_CHARS] + "…"
    return f"{where}: {problem['msg']}, got {given}"


def build_server(connections: Connections, limits: ToolLimits, version: str = "") -> MCPServer:
    """An MCPServer declaring every browser tool, each run on its connection's browser."""
    server: MCPServer = BrowserToolServer(
        SERVER_NAME, instructions=INSTRUCTIONS, version=version, log_level="WARNING"
    )
    runner = ToolRunner(connections, limits)
    register_page_tools(server, runner)
    register_capture_tools(server, runner)
    register_inspect_tools(server, runner)
    register_tab_tools(server, runner)
    return server
