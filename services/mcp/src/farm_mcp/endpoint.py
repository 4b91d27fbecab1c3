"""/mcp as an ASGI app: the SDK's streamable HTTP, with the farm's two rules around it.

- A client of the 2026-07-28 protocol (no MCP session, one request at a time) is
  told to use a session-based revision: one connection drives one farm session,
  so this endpoint needs the Mcp-Session-Id. The SDK's own client then falls back
  to the initialize handshake by itself.
- When a client ends its MCP session (DELETE), its browser is closed before the
  answer goes out.
"""

from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp_types import UNSUPPORTED_PROTOCOL_VERSION, ErrorData, JSONRPCError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from farm_mcp.connections import HttpConnections


class McpEndpoint:
    """The SDK's streamable HTTP endpoint, refusing sessionless protocol revisions."""

    def __init__(self, sdk_endpoint: StreamableHTTPASGIApp, connections: HttpConnections) -> None:
        self._sdk_endpoint = sdk_endpoint
        self._connections = connections

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        version = headers.get(MCP_PROTOCOL_VERSION_HEADER)
        if version in MODERN_PROTOCOL_VERSIONS:
            await _sessionless_refusal(version)(scope, receive, send)
            return
        session_id = headers.get(MCP_SESSION_ID_HEADER)
        if scope["method"] != "DELETE" or not session_id:
            await self._sdk_endpoint(scope, receive, send)
            return
        # The SDK's answer is held until the browser is closed, so that a client
        # that has seen its session end never finds its browser still open.
        answer: list[Message] = []

        async def hold(message: Message) -> None:
            answer.append(message)

        await self._sdk_endpoint(scope, receive, hold)
        status = next((int(m["status"]) for m in answer if m["type"] == "http.response.start"), 0)
        # Only the key that opened a session may end it; the SDK answers others 404.
        if 200 <= status < 300:
            await self._connections.end(session_id)
        for message in answer:
            await send(message)


def _sessionless_refusal(version: str) -> Response:
    """The answer to a 2026-07-28 request: that version is unsupported; these are."""
    error = ErrorData(
        code=UNSUPPORTED_PROTOCOL_VERSION,
        message="This endpoint keeps one browser per MCP session: use a protocol "
        f"revision with sessions ({', '.join(HANDSHAKE_PROTOCOL_VERSIONS)})",
        data={"supported": list(HANDSHAKE_PROTOCOL_VERSIONS), "requested": version},
    )
    body = JSONRPCError(jsonrpc="2.0", id=None, error=error)
    return Response(
        body.model_dump_json(by_alias=True, exclude_unset=True),
        status_code=400,
        media_type="application/json",
    )
