"""A refusal of the farm shows with the HTTP status the farm's HTTP API gives its code."""

import grpc
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from farm_console.farm import FarmError
from farm_console.settings import ConsoleSettings
from farm_console.views import farm_refused


def refusing(code: grpc.StatusCode) -> Starlette:
    """An app whose one page the farm refuses with `code`."""

    async def page(request: Request) -> None:
        raise FarmError(code, "refused by the farm")

    app = Starlette(routes=[Route("/page", page)], exception_handlers={FarmError: farm_refused})
    app.state.settings = ConsoleSettings()
    return app


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.FAILED_PRECONDITION, 400),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.INTERNAL, 500),
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.UNAVAILABLE, 503),
    ],
)
def test_a_refusal_shows_with_the_apis_status_for_its_code(
    code: grpc.StatusCode, status: int
) -> None:
    with TestClient(refusing(code)) as client:
        answer = client.get("/page")
    assert answer.status_code == status
    assert "refused by the farm" in answer.text


@pytest.mark.parametrize(
    ("code", "status", "said"),
    [
        (grpc.StatusCode.UNAVAILABLE, 503, "The farm is unavailable:"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "The farm did not answer in time:"),
        (grpc.StatusCode.INTERNAL, 500, "The farm failed (server error):"),
        (grpc.StatusCode.UNKNOWN, 500, "The farm failed (server error):"),
        (grpc.StatusCode.NOT_FOUND, 404, "The farm refused:"),
    ],
)
def test_a_farm_that_did_not_answer_or_failed_is_not_said_to_have_refused(
    code: grpc.StatusCode, status: int, said: str
) -> None:
    with TestClient(refusing(code)) as client:
        answer = client.get("/page")
    assert answer.status_code == status
    assert f'<p class="error" role="alert">{said} <code>{code.name}</code>' in answer.text
    if status != 404:
        assert "The farm refused" not in answer.text
        assert "<title>Refused" not in answer.text
    title = {500: "Server error", 404: "Refused"}.get(status, "No answer")
    assert f"<title>{title}" in answer.text
