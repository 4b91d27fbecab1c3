"""The farm's browser tools for MCP, shared by `farm mcp` (stdio) and the MCP service (HTTP).

Every tool is a call of the farm's SessionService: one MCP connection drives one
farm session, opened on its first tool call and closed when the connection ends.
`farm.py` makes the calls, `browser.py` keeps a connection's session, `commands.py`
turns a tool's arguments into a SessionCommand, `replies.py` turns its result into
MCP content, and `tools.py`, `capture_tools.py`, `inspect_tools.py` and `tab_tools.py`
declare the tools on an MCPServer
(`server.py` builds one).
"""
