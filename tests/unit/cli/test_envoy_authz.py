"""The rendered Envoy configuration's key check: what Envoy asks auth, and what goes without."""

from typing import Any

from farm_cli.launcher.envoy import MAX_REQUEST_BYTES, Endpoint
from tests.unit.cli.envoy_render import clusters, connection_manager, rendered, routes


def authz_filter(config: dict[str, Any]) -> dict[str, Any]:
    (authz,) = [
        f["typed_config"]
        for f in connection_manager(config)["http_filters"]
        if f["name"] == "envoy.filters.http.ext_authz"
    ]
    return dict(authz)


def test_headers_only_envoy_and_auth_set_are_dropped_from_client_requests() -> None:
    (strip,) = [
        f["typed_config"]
        for f in connection_manager(rendered())["http_filters"]
        if f["name"] == "envoy.filters.http.header_mutation"
    ]
    removed = {m["remove"] for m in strip["mutations"]["request_mutations"]}
    assert removed == {
        "x-farm-identity",
        "x-farm-agent",
        "x-farm-client-address",
        "x-farm-content-type",
        # A client's own list of refused batch items reaches no scheduler.
        "x-farm-refused-items",
    }


def test_authz_fails_closed_against_the_auth_check_cluster() -> None:
    authz = authz_filter(rendered())
    service = authz["http_service"]
    assert service["server_uri"]["cluster"] == "auth_check"
    assert service["path_prefix"] == "/check"
    assert authz["failure_mode_allow"] is False
    assert authz["transport_api_version"] == "V3"


def test_authz_asks_auth_with_the_client_address_that_envoy_saw() -> None:
    authz = authz_filter(rendered())
    added = authz["http_service"]["authorization_request"]["headers_to_add"]
    assert {
        "key": "x-farm-client-address",
        "value": "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%",
    } in added
    # A client's own header of that name is never forwarded to auth.
    forwarded = {p["exact"] for p in authz["allowed_headers"]["patterns"]}
    assert "x-farm-client-address" not in forwarded
    assert {"authorization", "cookie"} <= forwarded


def test_authz_hands_auth_the_content_type_under_a_name_of_its_own() -> None:
    # As content-type, a gRPC call's makes Envoy take its own reply to a check that
    # timed out for an allowing gRPC answer (tests/integration/cli/test_edge_auth_outage.py).
    authz = authz_filter(rendered())
    added = authz["http_service"]["authorization_request"]["headers_to_add"]
    assert {"key": "x-farm-content-type", "value": "%REQ(content-type)%"} in added
    assert "content-type" not in {p["exact"] for p in authz["allowed_headers"]["patterns"]}


def test_auth_check_cluster_is_each_auth_host_on_the_check_port() -> None:
    config = rendered(
        upstreams={n: [Endpoint(n, 7000)] for n in ("auth", "storage", "scheduler")},
        auth_check_port=7106,
    )
    check = clusters(config)["auth_check"]
    (endpoint,) = check["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"]["address"]["socket_address"] == {
        "address": "auth",
        "port_value": 7106,
    }
    assert check["health_checks"][0]["http_health_check"] == {"path": "/healthz"}


def test_only_json_calls_send_their_body_to_the_key_check() -> None:
    # Auth refuses a JSON field the RPC does not have, which the transcoder would drop.
    config = rendered()
    by_prefix = {r["match"].get("prefix"): r for r in routes(config)}
    check = by_prefix["/v1/"]["typed_per_filter_config"]["envoy.filters.http.ext_authz"]
    body = check["check_settings"]["with_request_body"]
    assert body["max_request_bytes"] == MAX_REQUEST_BYTES
    filters = connection_manager(config)["http_filters"]
    authz = [f for f in filters if f["name"] == "envoy.filters.http.ext_authz"]
    assert "with_request_body" not in authz[0]["typed_config"]


def test_only_the_health_checks_go_without_the_key_check() -> None:
    config = rendered()
    open_routes = [
        r
        for r in routes(config)
        if r.get("typed_per_filter_config", {})
        .get("envoy.filters.http.ext_authz", {})
        .get("disabled")
    ]
    assert [r["match"] for r in open_routes] == [
        {"path": "/healthz"},
        {"prefix": "/grpc.health.v1.Health/", "grpc": {}},
    ]
    # gRPC health is the scheduler's, its Watch a stream that an idle minute ends.
    assert open_routes[1]["route"] == {
        "cluster": "scheduler",
        "timeout": "0s",
        "idle_timeout": "60s",
    }
