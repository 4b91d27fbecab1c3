"""The edge check of hostile bodies and long headers: never an error of its own.

A 5xx is "auth did not answer" to the client and a failure counted against the
auth check's host (Envoy ejects it after five in a row).
"""

import pytest

from tests.integration.auth.conftest import Auth

pytestmark = pytest.mark.integration

DEPTH = 100_000


@pytest.mark.parametrize(
    "body",
    [
        b'{"url": ' + b"[" * DEPTH + b"]" * DEPTH + b"}",
        b'{"labels": ' + b'{"a": ' * DEPTH + b"1" + b"}" * DEPTH + b"}",
    ],
    ids=["arrays", "objects"],
)
async def test_json_nested_past_pythons_recursion_limit_is_left_to_the_transcoder(
    auth: Auth, body: bytes
) -> None:
    reply = await auth.check(f"Bearer {auth.admin_key}", path="/v1/tasks", body=body)

    # Envoy's transcoder refuses it in its own words (400).
    assert reply.http_status == 200, reply.body


@pytest.mark.parametrize("where", ["path", "cookie"])
async def test_a_request_line_or_header_past_8_kib_is_checked_like_any(
    auth: Auth, where: str
) -> None:
    # Envoy passes up to 60 KiB of headers on to the check.
    long = "a" * 20_000
    path, headers = "/v1/tasks", {}
    if where == "path":
        path = f"/v1/tasks?pageToken={long}"
    else:
        headers = {"cookie": f"x={long}"}

    reply = await auth.check(f"Bearer {auth.admin_key}", headers, path=path, method="GET")

    assert reply.http_status == 200, reply.body
