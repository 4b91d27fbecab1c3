"""The MCP service down behind Envoy: an MCP client is told so in the one body it reads.

An MCP client (the official SDKs' streamable HTTP clients) shows the message of a
JSON-RPC error in the body of an HTTP error status; any other body, Envoy's JSON of
the API routes included, it replaces with a bare "Server returned an error response".
"""

from collections.abc import Iterator

import httpx
import pytest
from mcp.types import JSONRPCError

from farm_core.free_ports import free_port
from tests.integration.cli.conftest import running_edge
from tests.unit.cli.fake_auth import GOOD_KEY

pytestmark = pytest.mark.integration

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
MCP_HEADERS = {
    "authorization": f"Bearer {GOOD_KEY}",
    "accept": "application/json, text/event-stream",
}


@pytest.fixture(scope="module")
def edge_without_mcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Envoy (its address) whose MCP service's port nobody listens on."""
    with running_edge(tmp_path_factory.mktemp("mcp-down"), mcp_port=free_port()) as edge:
        yield edge.grpc_target


def test_an_mcp_request_while_the_mcp_service_is_down_is_a_json_rpc_error_naming_it(
    edge_without_mcp: str,
) -> None:
    response = httpx.post(
        f"http://{edge_without_mcp}/mcp", headers=MCP_HEADERS, json=PING, timeout=15
    )
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    error = JSONRPCError.model_validate_json(response.text)
    assert error.id is None
    assert error.error.message.startswith("the mcp service is unavailable ("), error
    assert error.error.message.endswith("; try again"), error
    assert error.error.data == {"status": "UNAVAILABLE"}
