"""Reading the key Envoy forwards, and the answers the edge check gives Envoy over HTTP."""

import json

import pytest
from google.rpc import code_pb2  # type: ignore[import-untyped]
from multidict import CIMultiDict, CIMultiDictProxy

from farm_auth.authz import Verdict, bearer_key, denied, limited
from farm_auth.check_http import edge_request, http_answer
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


def answer_headers(verdict: Verdict) -> dict[str, str]:
    return dict(http_answer(verdict).headers)


def test_header_is_read_case_insensitively_as_aiohttp_hands_it() -> None:
    request = edge_request(
        "POST",
        "/check/v1/tasks?x=1",
        CIMultiDictProxy(
            CIMultiDict({"Authorization": "Bearer a", "X-Farm-Client-Address": "::1"})
        ),
        b"{}",
    )

    assert request.header("authorization") == "Bearer a"
    assert request.header("x-other") is None
    assert (request.path, request.source_address) == ("/v1/tasks?x=1", "::1")


def test_denied_answer_is_a_401_with_a_json_body_and_challenge() -> None:
    verdict = denied("unknown API key")
    answer = http_answer(verdict)

    assert verdict.code == code_pb2.UNAUTHENTICATED
    assert answer.status == 401
    assert answer_headers(verdict) == {
        "content-type": "application/json",
        "www-authenticate": "Bearer",
    }
    assert isinstance(answer.body, bytes)
    assert json.loads(answer.body) == {"code": 16, "message": "unknown API key"}


def test_denied_answer_to_a_grpc_caller_carries_the_bare_message_and_its_status() -> None:
    verdict = denied("unknown API key", grpc_caller=True)
    answer = http_answer(verdict)

    assert answer.status == 401
    assert answer_headers(verdict)["grpc-status"] == str(code_pb2.UNAUTHENTICATED)
    assert answer_headers(verdict)["content-type"] == "text/plain"
    assert answer.body == b"unknown API key"


def test_limited_answer_is_a_429_with_retry_after_in_whole_seconds() -> None:
    verdict = limited("over its rate limit", 0.2, grpc_caller=True)

    assert http_answer(verdict).status == 429
    headers = answer_headers(verdict)
    assert (headers["retry-after"], headers["grpc-status"]) == ("1", "8")


def test_allowed_answer_carries_the_identity_and_drops_the_key() -> None:
    answer = http_answer(Verdict(code=0, identity_token="token-1"))

    assert answer.status == 200
    assert dict(answer.headers) == {
        "x-farm-identity": "token-1",
        "x-envoy-auth-headers-to-remove": "authorization",
    }


def test_allowed_answer_to_a_session_names_its_agent_and_sets_the_ticket() -> None:
    answer = http_answer(
        Verdict(code=0, identity_token="t", agent="127.0.0.1:7150", set_cookie="ticket=x")
    )

    assert answer.headers["x-farm-agent"] == "127.0.0.1:7150"
    assert answer.headers["set-cookie"] == "ticket=x"
