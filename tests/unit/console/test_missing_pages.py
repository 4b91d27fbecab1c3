"""An address the console has no page at gets its own HTML page; GET /signout signs nobody out."""

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.testclient import TestClient

from farm_console.pages import signin, tasks
from farm_console.refusals import refused_keys
from farm_console.security import SecurityHeaders
from farm_console.settings import ConsoleSettings
from farm_console.views import EXCEPTION_HANDLERS, KEY_COOKIE, PREFIX


@pytest.fixture
def client() -> Iterator[TestClient]:
    """The sign-in and task pages with the handlers build_app gives the console."""
    app = Starlette(
        routes=[Mount(PREFIX, routes=[*signin.routes, *tasks.routes])],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.settings = ConsoleSettings()
    app.state.refused_keys = refused_keys(app.state.settings)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        test_client.cookies.set(KEY_COOKIE, "bf_key")
        yield test_client


def test_an_unknown_path_is_the_consoles_404_page_with_a_way_back(client: TestClient) -> None:
    answer = client.get("/console/nowhere")

    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "The console has no page at <code>/console/nowhere</code>." in answer.text
    assert '<a id="back" href="/console/">Back to the overview</a>' in answer.text


def test_a_get_of_a_buttons_address_says_so_and_keeps_allow(client: TestClient) -> None:
    answer = client.get("/console/tasks/t1/cancel")

    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert "<code>GET /console/tasks/t1/cancel</code> is what a button" in answer.text


def test_get_signout_shows_a_button_and_keeps_the_key(client: TestClient) -> None:
    answer = client.get("/console/signout")

    assert answer.status_code == 200
    assert '<form method="post" action="/console/signout" id="signout">' in answer.text
    assert "set-cookie" not in answer.headers
    assert client.cookies.get(KEY_COOKIE) == "bf_key"


def test_the_buttons_post_signs_out(client: TestClient) -> None:
    answer = client.post("/console/signout", follow_redirects=False)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/signin"
    assert f'{KEY_COOKIE}=""' in answer.headers["set-cookie"]


def test_get_signout_without_a_key_goes_to_sign_in(client: TestClient) -> None:
    client.cookies.clear()
    answer = client.get("/console/signout", follow_redirects=False)

    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/signin"


def test_a_refused_cross_site_post_carries_the_headers_every_answer_does(
    client: TestClient,
) -> None:
    # docs/console.md: every answer carries the policy, nosniff and no-store; the
    # cross-site refusal, sent before the page, carried none of them.
    answer = client.post(
        "/console/signout", headers={"sec-fetch-site": "cross-site"}, follow_redirects=False
    )

    assert answer.status_code == 403
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert answer.headers["cache-control"] == "no-store"
