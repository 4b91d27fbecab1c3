"""`farm mcp`: the farm's browser tools for an assistant, as an MCP server over stdio.

The assistant starts `farm mcp` and talks MCP on its stdin and stdout; the tools
reach the farm like the other commands (FARM_URL, FARM_API_KEY; the key needs the
scope `sessions`, and `artifacts.read` for screenshots, `script` for evaluate).
The server itself is in farm_cli/mcp_stdio.py.
"""

import argparse

from farm_cli.commands.ranges import INT32_MAX, positive_number, whole_number

# The defaults of farm_mcp_tools' ToolLimits (call_seconds, action_ms) and
# BrowserSettings.idle_timeout_seconds.
DEFAULT_TOOL_TIMEOUT = 60.0
DEFAULT_ACTION_TIMEOUT = 10.0
DEFAULT_IDLE_TIMEOUT = 300


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `mcp`."""
    parser = commands.add_parser(
        "mcp",
        help="serve the browser tools to an AI assistant over MCP (stdio); one farm session",
        description="An MCP server on stdin/stdout whose tools drive one farm session "
        "(navigate, snapshot, click, fill, screenshot, audits, ...). Add it to an "
        "assistant's MCP configuration as the command `farm mcp` (see docs/mcp.md).",
    )
    parser.add_argument(
        "--tool-timeout",
        type=positive_number,
        default=DEFAULT_TOOL_TIMEOUT,
        metavar="S",
        help="time limit of each tool call in seconds (default %(default)s)",
    )
    parser.add_argument(
        "--action-timeout",
        type=positive_number,
        default=DEFAULT_ACTION_TIMEOUT,
        metavar="S",
        help="how long a click, fill, hover, select or press waits for its element "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=whole_number(INT32_MAX),
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="S",
        help="the farm closes the browser after this long without a tool call "
        "(default %(default)s)",
    )
    parser.set_defaults(run=serve_stdio)


def serve_stdio(args: argparse.Namespace) -> int:
    """Serves MCP on stdin/stdout until stdin closes, then closes the farm session."""
    # Imported only here: the MCP SDK takes almost half a second to import, which the
    # other commands should not pay.
    from farm_cli.mcp_stdio import serve

    serve(
        tool_timeout=args.tool_timeout,
        action_timeout=args.action_timeout,
        idle_timeout=args.idle_timeout,
    )
    return 0
