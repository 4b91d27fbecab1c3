"""Reading the key Envoy forwards, and the answers the edge check gives Envoy over HTTP."""

import json
from typing import cast

import aiohttp
import pytest
from google.rpc import code_pb2  # type: ignore[import-untyped]
from multidict import CIMultiDict, CIMultiDictProxy
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from farm_auth.authz import Authorizer, EdgeRequest, Verdict, bearer_key, denied, limited
from farm_auth.check_http import CheckServer, edge_request, http_answer
from farm_auth.keys import KeyRefused
from farm_core.logs import trace_id_var

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


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


def test_allowed_answer_carries_the_identity_and_drops_the_key_and_consoles_credential() -> None:
    answer = http_answer(Verdict(code=0, identity_token="token-1"))

    assert answer.status == 200
    assert dict(answer.headers) == {
        "x-farm-identity": "token-1",
        "x-envoy-auth-headers-to-remove": (
            "authorization,x-farm-console-credential,x-farm-console-client"
        ),
    }


def test_allowed_answer_to_a_session_names_its_agent_and_sets_the_ticket() -> None:
    answer = http_answer(
        Verdict(code=0, identity_token="t", agent="127.0.0.1:7150", set_cookie="ticket=x")
    )

    assert answer.headers["x-farm-agent"] == "127.0.0.1:7150"
    assert answer.headers["set-cookie"] == "ticket=x"


class TraceNoted:
    """An authorizer that notes the trace id the check's log lines carry while it decides."""

    def __init__(self) -> None:
        self.trace_ids: list[str] = []

    async def check(self, request: EdgeRequest) -> Verdict:
        self.trace_ids.append(trace_id_var.get())
        return Verdict(code=0, identity_token="token-1")


async def logged_trace_id(headers: dict[str, str]) -> str:
    """The trace id of log lines written during a check of a request with `headers`."""
    noted = TraceNoted()
    server = CheckServer(cast("Authorizer", noted), "127.0.0.1", 0, None)
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{server.port}/check/v1/tasks", headers=headers) as answer,
        ):
            assert answer.status == 200
    finally:
        await server.close()
    return noted.trace_ids[0]


async def test_log_lines_of_a_check_carry_the_callers_trace_id() -> None:
    assert await logged_trace_id({"traceparent": CALLER}) == CALLER_TRACE_ID
    assert await logged_trace_id({}) == ""


async def test_log_lines_of_a_traced_check_carry_the_trace_of_its_span(
    recorded_spans: InMemorySpanExporter,
) -> None:
    assert await logged_trace_id({"Traceparent": CALLER}) == CALLER_TRACE_ID
    [span] = [s for s in recorded_spans.get_finished_spans() if s.name == "ext_authz check"]
    assert span.kind == SpanKind.SERVER
    assert span.parent is not None and span.parent.span_id == int(CALLER.split("-")[2], 16)


class Failing:
    """An authorizer whose check fails (a bug): the check logs the request."""

    async def check(self, request: EdgeRequest) -> Verdict:
        raise RuntimeError("broken")


async def test_a_checks_span_and_log_leave_out_the_query_and_its_token(
    recorded_spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    server = CheckServer(cast("Authorizer", Failing()), "127.0.0.1", 0, None)
    await server.start()
    path = "/v1/sessions/ses_0123456789abcdef/cdp"
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"http://127.0.0.1:{server.port}/check{path}?token=secret-token-1",
                headers={"traceparent": CALLER},
            ) as answer,
        ):
            assert answer.status == 500
    finally:
        await server.close()
    [span] = [s for s in recorded_spans.get_finished_spans() if s.name == "ext_authz check"]
    assert span.attributes is not None and span.attributes["url.path"] == path
    assert f"GET {path} failed" in caplog.text
    assert "secret-token-1" not in caplog.text
