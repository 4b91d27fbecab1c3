"""The `tabs` tool: the browser's pages (tabs), and which one the other tools act on."""

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.types import ContentBlock
from pydantic import Field

from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools import commands, replies
from farm_mcp_tools.commands import TabsActionName
from farm_mcp_tools.runner import ToolContext, ToolRunner
from farm_mcp_tools.tools import ACTS, say


def tab_lines(result: tasks_pb2.TaskResult) -> str:
    """One line per page: its index, title and URL, the current one marked."""
    listed = replies.result_json(result)
    if not isinstance(listed, list):
        return "The farm did not list the pages."
    return "\n".join(
        f'- {tab["index"]:g}: "{tab["title"]}" at {tab["url"]}'
        + (" (current)" if tab["current"] else "")
        for tab in listed
    )


def register_tab_tools(server: MCPServer, runner: ToolRunner) -> None:
    """Declares tabs."""

    @server.tool(annotations=ACTS, structured_output=False)
    async def tabs(
        ctx: ToolContext,
        action: Annotated[
            TabsActionName,
            Field(
                description="list the pages; select one (the other tools then act on it); "
                "close one (not the last); or open a new one and make it current."
            ),
        ] = "list",
        index: Annotated[
            int, Field(description="For select and close: the page's index, as list shows it.")
        ] = -1,
        url: Annotated[
            str, Field(description="For new: the http or https URL to open; empty: about:blank.")
        ] = "",
    ) -> list[ContentBlock]:
        """List the browser's pages (tabs), or select, close or open one.

        The other tools act on the current page: the one selected or opened last, or a
        pop-up opened since.
        """
        result = await runner.run(ctx, lambda: commands.tabs(action, index, url))
        return say(f"{replies.page_line(result)}\n\nPages:\n{tab_lines(result)}")
