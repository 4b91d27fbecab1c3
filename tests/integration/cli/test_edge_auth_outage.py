"""The edge fails closed when auth's check does not answer: gRPC calls too.

Envoy's HTTP client for the check once took a gRPC call's check for gRPC (the
content-type it forwarded) and its own timeout or connection-refused reply for a
gRPC answer of status 200, which ext_authz lets through: unchecked, with the
client's own x-farm-identity and key, to the service.
"""

from collections.abc import Iterator

import grpc
import httpx
import pytest

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from tests.integration.cli.conftest import EdgeUnderTest, running_edge
from tests.unit.cli.fake_auth import CHECK_HANGS_KEY, GOOD_KEY

pytestmark = pytest.mark.integration

DID_NOT_ANSWER = "authorization: the auth service did not answer; try again"
REPLAYED = (("x-farm-identity", "a-token-replayed-by-the-client"),)


def who_am_i(edge: EdgeUnderTest, key: str) -> grpc.RpcError:
    """The error of a gRPC WhoAmI with `key` and a client's own x-farm-identity."""
    with grpc.insecure_channel(edge.grpc_target) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.WhoAmI(
                auth_pb2.WhoAmIRequest(),
                metadata=(("authorization", f"Bearer {key}"), *REPLAYED),
                timeout=20,
            )
    return caught.value


def reached_a_service(edge: EdgeUnderTest) -> bool:
    return any(name == "WhoAmI" for name, _, _ in edge.fakes.calls.seen)


@pytest.fixture
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeUnderTest]:
    with running_edge(tmp_path_factory.mktemp("edge-outage")) as running:
        yield running
        running.fakes.calls.hung_check_released.set()


def test_a_grpc_call_whose_check_times_out_is_unavailable(edge: EdgeUnderTest) -> None:
    error = who_am_i(edge, CHECK_HANGS_KEY)
    edge.fakes.calls.hung_check_released.set()

    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    assert error.details() == DID_NOT_ANSWER
    assert not reached_a_service(edge)


def test_a_grpc_call_with_auth_down_is_unavailable(edge: EdgeUnderTest) -> None:
    edge.fakes.check_server.shutdown()
    edge.fakes.check_server.server_close()

    error = who_am_i(edge, GOOD_KEY)

    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    assert not reached_a_service(edge)


def test_a_json_call_whose_check_times_out_is_503(edge: EdgeUnderTest) -> None:
    response = httpx.get(
        f"{edge.url}/v1/whoami",
        headers={"authorization": f"Bearer {CHECK_HANGS_KEY}", **dict(REPLAYED)},
        timeout=20,
    )
    edge.fakes.calls.hung_check_released.set()

    assert response.status_code == 503, response.text
    assert response.json()["message"] == DID_NOT_ANSWER
    assert not reached_a_service(edge)
