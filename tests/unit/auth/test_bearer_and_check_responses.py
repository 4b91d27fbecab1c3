"""Reading the key Envoy forwards, and the answers Check gives Envoy."""

import json

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2  # type: ignore[import-untyped]

from farm_auth.authz import allowed, bearer_key, denied, request_header
from farm_auth.keys import KeyRefused


@pytest.mark.parametrize(
    "header",
    ["Bearer bf_abc", "bearer bf_abc", "BEARER bf_abc", "  Bearer   bf_abc  ", "Bearer\tbf_abc"],
)
def test_bearer_scheme_is_case_insensitive_and_blanks_are_trimmed(header: str) -> None:
    assert bearer_key(header.replace("\t", " ")) == "bf_abc"


@pytest.mark.parametrize("header", [None, "", "   ", "Bearer", "Bearer   "])
def test_absent_key_is_missing(header: str | None) -> None:
    with pytest.raises(KeyRefused) as caught:
        bearer_key(header)

    assert caught.value.outcome == "missing"
    assert caught.value.message == "missing API key: send authorization: Bearer <key>"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "bf_abc", "Token bf_abc"])
def test_other_schemes_are_malformed(header: str) -> None:
    with pytest.raises(KeyRefused) as caught:
        bearer_key(header)

    assert caught.value.outcome == "malformed"
    assert "Bearer <key>" in caught.value.message


def check_request(
    headers: dict[str, str] | None = None, raw: dict[str, bytes] | None = None
) -> external_auth_pb2.CheckRequest:
    request = external_auth_pb2.CheckRequest()
    http = request.attributes.request.http
    http.headers.update(headers or {})
    for key, value in (raw or {}).items():
        http.header_map.headers.add(key=key, raw_value=value)
    return request


def test_header_is_read_from_headers_or_raw_header_map() -> None:
    assert request_header(check_request({"authorization": "Bearer a"}), "authorization") == (
        "Bearer a"
    )
    assert request_header(check_request(raw={"authorization": b"Bearer b"}), "authorization") == (
        "Bearer b"
    )
    assert request_header(check_request({"x-other": "1"}), "authorization") is None


def test_denied_answer_is_a_401_with_a_json_body_and_challenge() -> None:
    response = denied("unknown API key")

    assert response.status.code == code_pb2.UNAUTHENTICATED
    assert response.denied_response.status.code == http_status_pb2.Unauthorized
    headers = {h.header.key: h.header.value for h in response.denied_response.headers}
    assert headers == {"content-type": "application/json", "www-authenticate": "Bearer"}
    assert json.loads(response.denied_response.body) == {"code": 16, "message": "unknown API key"}


def test_denied_answer_to_a_grpc_caller_carries_the_bare_message() -> None:
    response = denied("unknown API key", grpc_caller=True)

    assert response.denied_response.status.code == http_status_pb2.Unauthorized
    headers = {h.header.key: h.header.value for h in response.denied_response.headers}
    assert headers["content-type"] == "text/plain"
    assert response.denied_response.body == "unknown API key"


def test_allowed_answer_overwrites_identity_and_drops_the_key() -> None:
    response = allowed("token-1")

    assert response.status.code == code_pb2.OK
    (option,) = response.ok_response.headers
    assert (option.header.key, option.header.value) == ("x-farm-identity", "token-1")
    assert option.append_action == base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
    assert list(response.ok_response.headers_to_remove) == ["authorization"]
