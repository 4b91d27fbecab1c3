"""The farm's Envoy serving TLS (a local CA's certificate) in front of fake services."""

import json
import socket
import ssl
from pathlib import Path

import grpc
import httpx
import pytest

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm_cli.main import main
from tests.integration.cli.conftest import EdgeUnderTest
from tests.unit.cli.fake_auth import GOOD_KEY
from tests.unit.cli.fake_services import PNG_BYTES

pytestmark = pytest.mark.integration

GOOD = {"authorization": f"Bearer {GOOD_KEY}"}


def ca_file(edge: EdgeUnderTest) -> str:
    assert edge.tls is not None and edge.tls.ca is not None
    return str(edge.tls.ca)


def https(edge: EdgeUnderTest) -> httpx.Client:
    """An HTTPS client that trusts only the edge's CA."""
    return httpx.Client(
        base_url=edge.url, verify=ssl.create_default_context(cafile=ca_file(edge)), timeout=10
    )


def test_http_json_is_served_over_https_with_the_local_ca(tls_edge: EdgeUnderTest) -> None:
    assert tls_edge.url.startswith("https://")
    with https(tls_edge) as client:
        whoami = client.get("/v1/whoami", headers=GOOD)
        content = client.get("/v1/artifacts/a1:content", headers=GOOD)
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["tenant"] == "acme"
    assert content.status_code == 200 and content.content == PNG_BYTES


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_the_certificate_names_localhost_and_127_0_0_1(tls_edge: EdgeUnderTest, host: str) -> None:
    port = tls_edge.grpc_target.rsplit(":", 1)[1]
    context = ssl.create_default_context(cafile=ca_file(tls_edge))
    with httpx.Client(verify=context, timeout=10) as client:
        assert client.get(f"https://{host}:{port}/v1/whoami", headers=GOOD).status_code == 200


def test_alpn_offers_h2_for_grpc(tls_edge: EdgeUnderTest) -> None:
    context = ssl.create_default_context(cafile=ca_file(tls_edge))
    context.set_alpn_protocols(["h2", "http/1.1"])
    host, port = tls_edge.grpc_target.rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as wrapped,
    ):
        assert wrapped.selected_alpn_protocol() == "h2"


def test_grpc_is_served_over_tls(tls_edge: EdgeUnderTest) -> None:
    ca = Path(ca_file(tls_edge)).read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    with grpc.secure_channel(tls_edge.grpc_target, credentials) as channel:
        answer = auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(
            auth_pb2.WhoAmIRequest(), metadata=tuple(GOOD.items()), timeout=10
        )
    assert answer.tenant == "acme"


def test_the_cli_talks_to_a_tls_farm_trusting_farm_ca_file(
    tls_edge: EdgeUnderTest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FARM_URL", tls_edge.url)
    monkeypatch.setenv("FARM_API_KEY", GOOD_KEY)
    monkeypatch.setenv("FARM_CA_FILE", ca_file(tls_edge))
    assert main(["task", "get", "t7"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == "t7"


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_edge: EdgeUnderTest) -> None:
    with (
        httpx.Client(base_url=tls_edge.url, timeout=10) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get("/v1/whoami", headers=GOOD)


def test_plain_http_on_the_tls_port_is_refused(tls_edge: EdgeUnderTest) -> None:
    before = len(tls_edge.fakes.calls.seen)
    plain = f"http://{tls_edge.grpc_target}"
    with httpx.Client(base_url=plain, timeout=10) as client:
        with pytest.raises(httpx.TransportError):
            client.get("/v1/whoami", headers=GOOD)
        with pytest.raises(httpx.TransportError):
            client.get("/healthz")
    with (
        grpc.insecure_channel(tls_edge.grpc_target) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(
            auth_pb2.WhoAmIRequest(), metadata=tuple(GOOD.items()), timeout=5
        )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert tls_edge.fakes.calls.seen[before:] == []
