"""The edge check of hostile /v1/ bodies: never a 5xx of its own.

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
