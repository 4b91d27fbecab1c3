"""The TLS parts of the rendered Envoy configuration: the listener, the clusters, the flags."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from farm_cli.launcher.envoy import Endpoint
from farm_cli.main import main
from tests.unit.cli.envoy_render import (
    COMPOSE_RENDER_ARGS,
    clusters,
    filter_chain,
    rendered,
    settings,
)

EDGE_TLS: dict[str, Any] = {
    "tls_cert_path": Path("/certs/farm.pem"),
    "tls_key_path": Path("/certs/key.pem"),
}
UPSTREAM_TLS: dict[str, Any] = {
    "upstream_cert_path": Path("/certs/internal.pem"),
    "upstream_key_path": Path("/certs/internal-key.pem"),
    "upstream_ca_path": Path("/certs/ca.pem"),
}


def test_without_certificates_the_listener_and_the_clusters_are_plain() -> None:
    config = rendered()
    assert "transport_socket" not in filter_chain(config)
    assert not any("transport_socket" in cluster for cluster in clusters(config).values())


def test_the_listener_serves_only_tls_with_alpn_h2_and_http11() -> None:
    config = rendered(**EDGE_TLS)
    socket = filter_chain(config)["transport_socket"]
    assert socket["name"] == "envoy.transport_sockets.tls"
    assert socket["typed_config"]["@type"].endswith("DownstreamTlsContext")
    context = socket["typed_config"]["common_tls_context"]
    assert context["alpn_protocols"] == ["h2", "http/1.1"]
    assert context["tls_certificates"] == [
        {
            "certificate_chain": {"filename": "/certs/farm.pem"},
            "private_key": {"filename": "/certs/key.pem"},
        }
    ]
    # TLS at the edge alone does not change how Envoy calls the services.
    assert not any("transport_socket" in cluster for cluster in clusters(config).values())


def test_envoy_calls_every_service_with_its_client_certificate() -> None:
    config = rendered(**UPSTREAM_TLS)
    assert "transport_socket" not in filter_chain(config)
    for name, cluster in clusters(config).items():
        typed = cluster["transport_socket"]["typed_config"]
        assert typed["@type"].endswith("UpstreamTlsContext")
        context = typed["common_tls_context"]
        # Auth's edge check speaks HTTP/1.1; the services gRPC.
        assert context["alpn_protocols"] == (["http/1.1"] if name == "auth_check" else ["h2"])
        assert context["tls_certificates"] == [
            {
                "certificate_chain": {"filename": "/certs/internal.pem"},
                "private_key": {"filename": "/certs/internal-key.pem"},
            }
        ]
        assert context["validation_context"]["trusted_ca"] == {"filename": "/certs/ca.pem"}


def test_envoy_checks_that_a_service_certificate_names_the_endpoint_it_dialled() -> None:
    upstreams = {
        "auth": [Endpoint("auth.internal", 7101)],
        "storage": [Endpoint("::1", 7102)],
        "scheduler": [Endpoint("127.0.0.1", 7103), Endpoint("scheduler-2", 7104)],
    }
    config = rendered(upstreams=upstreams, **UPSTREAM_TLS)
    names = {
        name: cluster["transport_socket"]["typed_config"]["common_tls_context"][
            "validation_context"
        ]["match_typed_subject_alt_names"]
        for name, cluster in clusters(config).items()
    }
    assert names == {
        "auth": [{"san_type": "DNS", "matcher": {"exact": "auth.internal"}}],
        "auth_check": [{"san_type": "DNS", "matcher": {"exact": "auth.internal"}}],
        "storage": [{"san_type": "IP_ADDRESS", "matcher": {"exact": "::1"}}],
        "scheduler": [
            {"san_type": "IP_ADDRESS", "matcher": {"exact": "127.0.0.1"}},
            {"san_type": "DNS", "matcher": {"exact": "scheduler-2"}},
        ],
    }


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"tls_cert_path": Path("/c.pem")}, "TLS certificate needs its key"),
        ({"tls_key_path": Path("/k.pem")}, "TLS certificate needs its key"),
        ({"upstream_cert_path": Path("/c.pem")}, "certificate, its key and the CA"),
        (
            {"upstream_cert_path": Path("/c.pem"), "upstream_key_path": Path("/k.pem")},
            "certificate, its key and the CA",
        ),
    ],
)
def test_tls_files_given_in_part_are_refused(given: dict[str, Path], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings(**given)


def test_envoy_config_command_takes_the_tls_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edge = ["--tls-cert", "/certs/farm.pem", "--tls-key", "/certs/key.pem"]
    upstream = ["--upstream-tls-cert", "/certs/internal.pem"]
    upstream += ["--upstream-tls-key", "/certs/internal-key.pem"]
    output = tmp_path / "envoy.yaml"
    args = [*COMPOSE_RENDER_ARGS, *edge, *upstream, "--upstream-tls-ca", "/certs/ca.pem"]
    assert main([*args, "-o", str(output)]) == 0
    compose_upstreams = {
        name: [Endpoint(name, port)]
        for name, port in (
            ("auth", 7101),
            ("storage", 7102),
            ("scheduler", 7103),
            ("mcp", 7104),
            ("console", 7105),
        )
    }
    config = yaml.safe_load(output.read_text())
    expected = rendered(upstreams=compose_upstreams, **EDGE_TLS, **UPSTREAM_TLS)
    socket = filter_chain(expected)["transport_socket"]
    assert filter_chain(config)["transport_socket"] == socket
    # The services' clusters (compose's also sends spans to its collector, in plaintext).
    assert [clusters(config)[name]["transport_socket"] for name in clusters(expected)] == [
        c["transport_socket"] for c in clusters(expected).values()
    ]
    assert main([*COMPOSE_RENDER_ARGS, *upstream]) == 1
    assert "certificate, its key and the CA" in capsys.readouterr().err
