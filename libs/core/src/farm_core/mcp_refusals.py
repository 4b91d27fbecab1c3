"""How /mcp refuses a request: with a JSON-RPC error, the one error body MCP clients show.

The edge's check (auth) refuses a /mcp request whose key is missing, unknown,
revoked, expired or over its rate limit; the MCP service one whose key lacks the
scope `sessions`. An MCP client (the official SDKs' streamable HTTP clients) reads
a JSON-RPC error in the body of an HTTP error status and shows its message; any
other body it replaces with a bare "Server returned an error response", so an
assistant whose key was revoked mid-connection could not tell why its calls fail.
"""

import json

import grpc

MCP_PATH = "/mcp"
"""The path of the MCP service's streamable HTTP endpoint behind Envoy."""

MCP_REQUEST_REFUSED = -32001
"""The JSON-RPC error code of a refused /mcp request (an implementation-defined server error)."""


def mcp_refusal_body(status: grpc.StatusCode, message: str) -> str:
    """A JSON-RPC error (id null, as for a request refused before it was read) saying why.

    Worded as the tools' errors are ("the farm refused: PERMISSION_DENIED: ..."); its
    `data` names the status, for a client that acts on it (e.g. backs off on
    RESOURCE_EXHAUSTED).
    """
    error = {
        "code": MCP_REQUEST_REFUSED,
        "message": f"the farm refused: {status.name}: {message}",
        "data": {"status": status.name},
    }
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": error})
