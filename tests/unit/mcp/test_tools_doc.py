"""docs/mcp.md's tool table lists exactly the tools the server declares, and their arguments."""

import re
from pathlib import Path
from typing import Any

MCP_DOC = (Path(__file__).resolve().parents[3] / "docs" / "mcp.md").read_text()


def documented_tools() -> dict[str, str]:
    """The tool table's rows: a tool's name, and its arguments' cell."""
    return dict(re.findall(r"^\| `([a-z_]+)` \| ([^|]*) \|", MCP_DOC, re.M))


async def test_the_doc_lists_every_tool_and_no_other(client_for: Any) -> None:
    async with client_for() as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
    documented = set(documented_tools())
    assert not listed - documented, f"docs/mcp.md lacks the tools {sorted(listed - documented)}"
    assert not documented - listed, f"docs/mcp.md lists no such tools {sorted(documented - listed)}"


async def test_the_doc_names_each_argument_of_a_tool(client_for: Any) -> None:
    async with client_for() as client:
        tools = (await client.list_tools()).tools
    rows = documented_tools()
    unnamed = sorted(
        f"{tool.name}.{argument}"
        for tool in tools
        for argument in tool.input_schema.get("properties", {})
        if f"`{argument}`" not in rows.get(tool.name, "")
    )
    assert not unnamed, f"docs/mcp.md's tool table does not name the arguments {unnamed}"
