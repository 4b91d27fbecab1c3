"""The Envoy configuration rendered from envoy/envoy.yaml.j2."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.api import annotations_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2

from farm_cli.launcher.envoy import Endpoint, render_envoy_config
from farm_cli.launcher.tls import load_or_create_internal_tls, load_or_create_local_tls
from farm_cli.main import main
from farm_core.public_api import PUBLIC_SERVICES
from tests.unit.cli.envoy_render import (
    COMPOSE_CONFIG,
    COMPOSE_RENDER_ARGS,
    DESCRIPTOR,
    TEMPLATE,
    clusters,
    connection_manager,
    envoy_validate,
    rendered,
    routes,
    sessions_cluster,
    settings,
)


def test_listener_and_admin_use_the_given_ports_on_loopback() -> None:
    config = rendered()
    (listener,) = config["static_resources"]["listeners"]
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 18080}
    assert config["admin"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 19901,
    }
    assert connection_manager(config)["codec_type"] == "AUTO"


def test_filters_run_health_buffer_strip_authz_transcoder_router() -> None:
    names = [f["name"] for f in connection_manager(rendered())["http_filters"]]
    assert names == [
        "envoy.filters.http.health_check",
        "envoy.filters.http.buffer",
        "envoy.filters.http.header_mutation",
        "envoy.filters.http.ext_authz",
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.router",
    ]


def test_health_check_needs_every_service_cluster() -> None:
    (health, *_) = connection_manager(rendered())["http_filters"]
    config = health["typed_config"]
    assert config["pass_through_mode"] is False
    assert set(config["cluster_min_healthy_percentages"]) == {
        "auth",
        "auth_check",
        "storage",
        "scheduler",
    }


def test_transcoder_reads_the_given_descriptor_and_limits_bodies() -> None:
    filters = connection_manager(rendered(descriptor_path=Path("/x y/farm.binpb")))["http_filters"]
    assert filters[1]["typed_config"]["max_request_bytes"] == 1024 * 1024
    transcoder = filters[4]["typed_config"]
    assert transcoder["proto_descriptor"] == "/x y/farm.binpb"
    assert sorted(transcoder["services"]) == public_services()
    assert transcoder["max_request_body_size"] == 1024 * 1024
    assert transcoder["max_response_body_size"] == 64 * 1024 * 1024
    assert transcoder["request_validation_options"]["reject_unknown_query_parameters"] is True


def test_routes_send_each_service_to_its_cluster_and_never_the_ingest_service() -> None:
    table = {
        r["match"].get("path") or r["match"].get("prefix"): r.get("route", {}).get("cluster")
        for r in routes(rendered())
        if "safe_regex" not in r["match"]
    }
    assert table["/farm.tasks.v1.TaskService/"] == "scheduler"
    assert table["/farm.storage.v1.ArtifactService/"] == "storage"
    assert table["/farm.auth.v1.AuthService/"] == "auth"
    assert table["/farm.admin.v1.AdminService/"] == "scheduler"
    assert all(f"/{service}/" in table for service in public_services())
    assert not any("Ingest" in path for path in table)


def public_services() -> list[str]:
    """Every service in the descriptor set with an HTTP mapping: what Envoy must expose."""
    descriptors = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    return sorted(
        f"{file.package}.{service.name}"
        for file in descriptors.file
        if file.package.startswith("farm.")
        for service in file.service
        if any(method.options.HasExtension(annotations_pb2.http) for method in service.method)
    )


def test_reflection_answers_for_every_service_envoy_exposes() -> None:
    assert sorted(PUBLIC_SERVICES) == public_services()


def test_session_browsers_go_to_the_agent_that_auth_names_with_no_timeout() -> None:
    config = rendered()
    (session_route,) = [r for r in routes(config) if "safe_regex" in r["match"]]
    pattern = re.compile(session_route["match"]["safe_regex"]["regex"])
    for path in (
        "/v1/sessions/ses_0123456789abcdef/cdp",
        "/v1/sessions/s/live",
        "/v1/sessions/s/live/view.js",
        "/v1/sessions/s/live/frames",
    ):
        assert pattern.fullmatch(path), path
    for path in ("/v1/sessions/s", "/v1/sessions/s:run", "/v1/sessions/s/cdp/x", "/v1/tasks"):
        assert not pattern.fullmatch(path), path
    route = session_route["route"]
    assert route["cluster"] == "sessions"
    assert route["timeout"] == "0s" and route["idle_timeout"] == "0s"
    assert route["upgrade_configs"] == [{"upgrade_type": "websocket", "enabled": True}]
    off = session_route["typed_per_filter_config"]
    assert off["envoy.filters.http.buffer"]["disabled"] is True
    assert off["envoy.filters.http.grpc_json_transcoder"]["disabled"] is True
    assert "envoy.filters.http.ext_authz" not in off
    # Before the generic /v1/ route, which would send them to the transcoder.
    prefixes = [r["match"].get("prefix") for r in routes(config)]
    assert routes(config).index(session_route) < prefixes.index("/v1/")
    cluster = sessions_cluster(config)
    assert cluster["type"] == "ORIGINAL_DST"
    assert cluster["original_dst_lb_config"] == {
        "metadata_key": {"key": "envoy.filters.http.ext_authz", "path": [{"key": "x-farm-agent"}]}
    }
    # Other routes keep WebSockets off.
    assert connection_manager(config)["upgrade_configs"] == [
        {"upgrade_type": "websocket", "enabled": False}
    ]


def test_clusters_list_every_replica_with_health_checks_and_outlier_detection() -> None:
    scheduler = clusters(rendered())["scheduler"]
    endpoints = [
        e["endpoint"]["address"]["socket_address"]
        for e in scheduler["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ]
    assert endpoints == [
        {"address": "127.0.0.1", "port_value": 17103},
        {"address": "127.0.0.2", "port_value": 17104},
    ]
    assert scheduler["type"] == "STATIC"
    assert scheduler["lb_policy"] == "LEAST_REQUEST"
    assert "grpc_health_check" in scheduler["health_checks"][0]
    assert scheduler["outlier_detection"]["consecutive_5xx"] > 0


def test_named_hosts_make_dns_clusters() -> None:
    upstreams = {name: [Endpoint(name, 7000)] for name in ("auth", "storage", "scheduler")}
    assert {c["type"] for c in clusters(rendered(upstreams=upstreams)).values()} == {"STRICT_DNS"}


def test_a_service_without_endpoints_is_refused() -> None:
    with pytest.raises(ValueError, match="storage"):
        settings(upstreams={"auth": [Endpoint("127.0.0.1", 1)], "scheduler": [Endpoint("a", 2)]})


def test_requests_are_traced_only_with_an_otlp_collector() -> None:
    assert "tracing" not in connection_manager(rendered())
    assert "otlp" not in {c["name"] for c in rendered()["static_resources"]["clusters"]}
    config = rendered(otlp=Endpoint("127.0.0.1", 14317))
    provider = connection_manager(config)["tracing"]["provider"]
    assert provider["name"] == "envoy.tracers.opentelemetry"
    assert provider["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] == "otlp"
    assert provider["typed_config"]["service_name"] == "farm-envoy"
    (otlp,) = [c for c in config["static_resources"]["clusters"] if c["name"] == "otlp"]
    (endpoint,) = otlp["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"]["address"]["socket_address"] == {
        "address": "127.0.0.1",
        "port_value": 14317,
    }
    assert "http2_protocol_options" in str(otlp["typed_extension_protocol_options"])


def test_envoy_config_command_takes_an_otlp_collector(tmp_path: Path) -> None:
    output = tmp_path / "envoy.yaml"
    assert main([*COMPOSE_RENDER_ARGS, "--otlp", "collector:4317", "-o", str(output)]) == 0
    config = yaml.safe_load(output.read_text())
    (otlp,) = [c for c in config["static_resources"]["clusters"] if c["name"] == "otlp"]
    assert otlp["type"] == "STRICT_DNS"
    assert "tracing" in connection_manager(config)


def max_connections(config: dict[str, Any]) -> int:
    (monitor,) = config["overload_manager"]["resource_monitors"]
    assert monitor["name"] == "envoy.resource_monitors.global_downstream_max_connections"
    return int(monitor["typed_config"]["max_active_downstream_connections"])


def test_downstream_connections_are_limited_to_50000_unless_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert max_connections(rendered()) == 50_000
    output = tmp_path / "envoy.yaml"
    assert main([*COMPOSE_RENDER_ARGS, "--max-connections", "1200", "-o", str(output)]) == 0
    assert max_connections(yaml.safe_load(output.read_text())) == 1200
    assert main([*COMPOSE_RENDER_ARGS, "--max-connections", "0", "-o", str(output)]) != 0
    assert "at least 1" in capsys.readouterr().err


def test_compose_envoy_config_is_the_current_render(tmp_path: Path) -> None:
    fresh = tmp_path / "envoy.yaml"
    assert main([*COMPOSE_RENDER_ARGS, "-o", str(fresh)]) == 0
    assert COMPOSE_CONFIG.read_text() == fresh.read_text(), (
        "envoy/compose/envoy.yaml is stale; regenerate it with: farm "
        + " ".join(COMPOSE_RENDER_ARGS)
        + " -o envoy/compose/envoy.yaml"
    )


@pytest.mark.integration
@pytest.mark.parametrize("hosts", ["addresses", "names", "tls", "traced"])
def test_envoy_accepts_the_rendered_config(tmp_path: Path, hosts: str) -> None:
    changes: dict[str, Any] = {}
    if hosts == "names":
        changes["upstreams"] = {n: [Endpoint(n, 7000)] for n in ("auth", "storage", "scheduler")}
    if hosts == "tls":
        edge = load_or_create_local_tls(tmp_path / "tls")
        internal = load_or_create_internal_tls(tmp_path / "tls")
        changes = {
            "tls_cert_path": edge.cert,
            "tls_key_path": edge.key,
            "upstream_cert_path": internal.cert,
            "upstream_key_path": internal.key,
            "upstream_ca_path": internal.ca,
        }
    if hosts == "traced":
        changes["otlp"] = Endpoint("127.0.0.1", 4317)
    path = tmp_path / "envoy.yaml"
    path.write_text(render_envoy_config(TEMPLATE, settings(**changes)))
    result = envoy_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    # Envoy logs each deprecated option it reads as a warning, at every start.
    assert "Deprecated field" not in result.stdout + result.stderr


def test_envoys_own_replies_to_http_json_callers_carry_the_grpc_code_of_their_status() -> None:
    mappers = connection_manager(rendered())["local_reply_config"]["mappers"]
    by_status = {
        m["filter"]["status_code_filter"]["comparison"]["value"]["default_value"]: m[
            "body_format_override"
        ]["json_format"]
        for m in mappers
        if "status_code_filter" in m["filter"] and "json_format" in m["body_format_override"]
    }
    codes = {status: body["code"] for status, body in by_status.items()}
    # An upstream's timeout is DEADLINE_EXCEEDED; the rest as docs/api.md's Errors table.
    assert codes == {400: 3, 403: 7, 404: 5, 413: 3, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}
    assert all(body["message"] == "%LOCAL_REPLY_BODY%" for body in by_status.values())
