"""The MCP service's pieces: who is admitted, sessionless clients, the edge's /mcp route."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.requests import HTTPConnection

from farm_cli.commands import mcp as mcp_command
from farm_cli.launcher.envoy import Endpoint, render_envoy_config
from farm_cli.launcher.tls import load_or_create_internal_tls
from farm_core.identity import Identity, IdentitySigner
from farm_core.identity_keys import new_private_key, private_pem
from farm_mcp.endpoint import McpEndpoint
from farm_mcp.identity import FarmIdentityBackend, FarmUser
from farm_mcp.server import tool_limits
from farm_mcp.settings import McpSettings
from farm_mcp_tools.browser import BrowserSettings
from farm_mcp_tools.runner import ToolLimits
from tests.helpers import TEST_SIGNER
from tests.unit.cli.envoy_render import (
    TEMPLATE,
    clusters,
    connection_manager,
    envoy_validate,
    settings,
)

MCP = [Endpoint("127.0.0.1", 17104)]


def connection(headers: dict[str, str]) -> HTTPConnection:
    raw = [(name.encode(), value.encode()) for name, value in headers.items()]
    return HTTPConnection({"type": "http", "method": "POST", "path": "/mcp", "headers": raw})


async def test_only_a_signed_identity_is_admitted_with_its_scopes() -> None:
    codec = TEST_SIGNER
    backend = FarmIdentityBackend(codec)
    identity = Identity(tenant="acme", key_id="key_1", scopes=frozenset({"sessions"}))
    token = codec.encode(identity)
    admitted = await backend.authenticate(connection({"x-farm-identity": token}))
    assert admitted is not None
    credentials, user = admitted
    assert credentials.scopes == ["sessions"]
    assert isinstance(user, FarmUser) and user.farm_identity.tenant == "acme"
    forged = IdentitySigner(private_pem(new_private_key())).encode(identity)
    assert await backend.authenticate(connection({"x-farm-identity": forged})) is None
    assert await backend.authenticate(connection({"authorization": "Bearer bf_x"})) is None


async def test_a_sessionless_client_is_told_the_revisions_with_sessions() -> None:
    reached: list[str] = []

    async def sdk_endpoint(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    endpoint = McpEndpoint(sdk_endpoint, connections=None)  # type: ignore[arg-type]
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/mcp",
        "headers": [(b"mcp-protocol-version", b"2026-07-28")],
    }
    await endpoint(scope, None, send)  # type: ignore[arg-type]
    assert reached == []
    assert sent[0]["status"] == 400
    error = json.loads(sent[1]["body"])["error"]
    assert error["code"] == -32022
    assert "2025-11-25" in error["data"]["supported"]
    assert "2026-07-28" not in error["data"]["supported"]


def test_the_edge_routes_mcp_untranscoded_to_its_http_cluster_when_given() -> None:
    config = yaml.safe_load(render_envoy_config(TEMPLATE, settings(upstreams=upstreams())))
    routes = connection_manager(config)["route_config"]["virtual_hosts"][0]["routes"]
    (mcp_route,) = [r for r in routes if r["match"].get("path") == "/mcp"]
    assert mcp_route["route"]["cluster"] == "mcp"
    assert mcp_route["route"]["timeout"] == "0s"
    disabled = mcp_route["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]
    assert disabled["disabled"] is True
    # ext_authz stays on for /mcp: only the health route turns it off.
    assert "envoy.filters.http.ext_authz" not in mcp_route.get("typed_per_filter_config", {})
    cluster = clusters(config)["mcp"]
    assert cluster["health_checks"][0]["http_health_check"] == {"path": "/healthz"}
    assert "typed_extension_protocol_options" not in cluster  # HTTP/1.1, not h2
    health = connection_manager(config)["http_filters"][0]["typed_config"]
    assert "mcp" in health["cluster_min_healthy_percentages"]


def test_without_an_mcp_upstream_the_edge_has_no_mcp_route() -> None:
    config = yaml.safe_load(render_envoy_config(TEMPLATE, settings()))
    routes = connection_manager(config)["route_config"]["virtual_hosts"][0]["routes"]
    assert not [r for r in routes if r["match"].get("path") == "/mcp"]
    assert "mcp" not in clusters(config)


def test_the_edge_does_not_route_the_renewal_of_identity_tokens() -> None:
    """Only the MCP service's credential may call it, and only inside the farm."""
    renewal = "/farm.auth.v1.IdentityRenewalService/RenewIdentity"
    config = yaml.safe_load(render_envoy_config(TEMPLATE, settings(upstreams=upstreams())))
    manager = connection_manager(config)
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    matching = [
        r
        for r in routes
        if renewal.startswith(r["match"].get("prefix", "\0"))
        or r["match"].get("path") == renewal
        or ("safe_regex" in r["match"] and re.fullmatch(r["match"]["safe_regex"]["regex"], renewal))
    ]
    assert matching == []
    (transcoder,) = [
        f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.grpc_json_transcoder"
    ]
    assert "farm.auth.v1.IdentityRenewalService" not in transcoder["typed_config"]["services"]


def upstreams() -> dict[str, list[Endpoint]]:
    return {
        "auth": [Endpoint("127.0.0.1", 17101)],
        "storage": [Endpoint("127.0.0.1", 17102)],
        "scheduler": [Endpoint("127.0.0.1", 17103)],
        "mcp": MCP,
    }


@pytest.mark.integration
def test_envoy_accepts_the_mcp_route_with_mutual_tls(tmp_path: Path) -> None:
    internal = load_or_create_internal_tls(tmp_path / "tls")
    path = tmp_path / "envoy.yaml"
    rendered = render_envoy_config(
        TEMPLATE,
        settings(
            upstreams=upstreams(),
            upstream_cert_path=internal.cert,
            upstream_key_path=internal.key,
            upstream_ca_path=internal.ca,
        ),
    )
    path.write_text(rendered)
    result = envoy_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_farm_mcp_flags_default_to_the_tools_own_limits() -> None:
    assert ToolLimits().call_seconds == mcp_command.DEFAULT_TOOL_TIMEOUT
    assert ToolLimits().action_ms == mcp_command.DEFAULT_ACTION_TIMEOUT * 1000
    assert ToolLimits().action_ms == McpSettings().action_timeout_seconds * 1000
    assert BrowserSettings().idle_timeout_seconds == mcp_command.DEFAULT_IDLE_TIMEOUT


def test_the_services_settings_set_its_tools_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_MCP_TOOL_TIMEOUT_SECONDS", "30")
    monkeypatch.setenv("FARM_MCP_ACTION_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("FARM_MCP_MAX_TEXT_CHARS", "500")
    limits = tool_limits(McpSettings())
    assert (limits.call_seconds, limits.action_ms, limits.max_text_chars) == (30, 2500, 500)
