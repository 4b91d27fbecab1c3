"""CDP attach tokens through Envoy: clients that send no authorization header.

On the shared farm: Playwright given an http:// discovery URL, a raw WebSocket with
`?token=`, and every way such a token must be refused; and no log keeps one.
"""

import datetime as dt
import json
import secrets
from typing import Any

import aiohttp
import httpx
import pytest
from playwright.async_api import Playwright

import browserfarm
from farm_cli.launcher.farm import LocalFarm
from farm_core.live_tokens import LIVE_SECRET_FILE, LiveTokenKind, encode_live_token
from tests.e2e.cli_calls import farm_in_process, printed
from tests.e2e.conftest import Client, KeyFactory, http_client
from tests.e2e.sessions_api import Sessions, assert_drives, ws_status
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]


def cdp_token(http: httpx.Client, session_id: str) -> dict[str, Any]:
    """CreateCdpToken over HTTP/JSON."""
    response = http.post(f"/v1/sessions/{session_id}:cdpToken")
    assert response.status_code == 200, response.text
    return dict(response.json())


def with_token(url: str, token: str) -> str:
    return f"{url.partition('?')[0]}?token={token}"


async def test_playwright_attaches_with_an_http_discovery_url_and_no_header(
    sessions: Sessions, site: Site, playwright: Playwright
) -> None:
    with sessions.opened() as session:
        sessions.run(session["id"], url=site.url("/form"))
        token = cdp_token(sessions.http, session["id"])
        assert token["discoveryUrl"].startswith("http://")
        assert token["cdpUrl"] == f"{session['cdpUrl']}?token={token['token']}"
        # Playwright fetches <url>/json/version/ and attaches to its webSocketDebuggerUrl.
        browser = await playwright.chromium.connect_over_cdp(token["discoveryUrl"])
        try:
            (page,) = [page for context in browser.contexts for page in context.pages]
            assert await page.title() == "Form"
        finally:
            await browser.close()
        # The token is reusable until it expires: a client may attach again.
        again = await playwright.chromium.connect_over_cdp(token["discoveryUrl"])
        await again.close()


def test_discovery_answers_as_chromium_does_naming_the_public_cdp_url(
    farm: LocalFarm, sessions: Sessions
) -> None:
    with sessions.opened() as session, http_client(farm, None) as anonymous:
        token = cdp_token(sessions.http, session["id"])
        base = f"/v1/sessions/{session['id']}/json/version"
        for path in (base, base + "/"):
            answer = anonymous.get(f"{path}?token={token['token']}")
            assert answer.status_code == 200, answer.text
            version = answer.json()
            assert version["Browser"].split("/")[0] in ("Chrome", "HeadlessChrome")
            assert version["Protocol-Version"] == "1.3"
            assert version["webSocketDebuggerUrl"] == token["cdpUrl"]
            assert answer.headers["cache-control"] == "no-store"
        # With the key instead, the socket it names carries no token.
        keyed = sessions.http.get(base).json()
        assert keyed["webSocketDebuggerUrl"] == session["cdpUrl"]
        assert anonymous.get(base).status_code == 401


async def test_a_raw_websocket_with_the_token_in_its_url_drives_the_browser(
    sessions: Sessions,
) -> None:
    with sessions.opened() as session:
        token = cdp_token(sessions.http, session["id"])
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(token["cdpUrl"]) as socket,
        ):
            await socket.send_str(json.dumps({"id": 1, "method": "Browser.getVersion"}))
            reply = json.loads(await socket.receive_str(timeout=10))
            assert reply["id"] == 1 and "product" in reply["result"], reply
        assert await ws_status(token["cdpUrl"]) == 101


async def test_a_token_opens_only_its_own_sessions_cdp_and_discovery(
    farm: LocalFarm, sessions: Sessions
) -> None:
    with sessions.opened() as mine, sessions.opened() as other:
        token = cdp_token(sessions.http, mine["id"])["token"]
        assert await ws_status(with_token(other["cdpUrl"], token)) == 401
        view = sessions.http.post(f"/v1/sessions/{mine['id']}:viewToken").json()["token"]
        # Neither kind of token stands in for the other.
        assert await ws_status(with_token(mine["cdpUrl"], view)) == 401
        with http_client(farm, None) as anonymous:
            live = anonymous.get(f"/v1/sessions/{mine['id']}/live?token={token}")
            assert live.status_code == 401
            # Nor for an API key, in the header or the query.
            with http_client(farm, token) as bearer:
                assert bearer.get("/v1/tasks").status_code == 401
                assert bearer.get(f"/v1/sessions/{mine['id']}").status_code == 401
            assert anonymous.get(f"/v1/tasks?token={token}").status_code == 401


async def test_an_expired_token_is_refused(farm: LocalFarm, sessions: Sessions) -> None:
    with sessions.opened() as session:
        # Signed as the scheduler signs them, with the farm's own secret, an hour ago.
        secret = (farm.home / LIVE_SECRET_FILE).read_text().strip()
        past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        expired, _ = encode_live_token(
            secret,
            LiveTokenKind.CDP,
            session["id"],
            "default",
            past,
            60,
            key_id="key_whatever",
            scopes=frozenset({"sessions"}),
        )
        assert await ws_status(with_token(session["cdpUrl"], expired)) == 401
        fresh = cdp_token(sessions.http, session["id"])
        assert await ws_status(fresh["cdpUrl"]) == 101


async def test_a_token_dies_with_its_session(sessions: Sessions) -> None:
    session = sessions.create()
    token = cdp_token(sessions.http, session["id"])
    assert await ws_status(token["cdpUrl"]) == 101
    sessions.close(session["id"])
    assert await ws_status(token["cdpUrl"]) == 401
    refused = sessions.http.post(f"/v1/sessions/{session['id']}:cdpToken")
    assert refused.status_code == 400, refused.text  # closed: FAILED_PRECONDITION


async def test_a_token_dies_when_the_key_that_asked_for_it_is_revoked(
    farm: LocalFarm, admin: Client, make_key: KeyFactory
) -> None:
    tenant = f"cdp-token-{secrets.token_hex(4)}"
    asker, keeper = make_key("sessions", tenant=tenant), make_key("sessions", tenant=tenant)
    with http_client(farm, keeper.secret) as http, Sessions(http).opened() as session:
        with http_client(farm, asker.secret) as asking:
            token = cdp_token(asking, session["id"])
        async with aiohttp.ClientSession() as client:
            attached = await client.ws_connect(token["cdpUrl"])
            await assert_drives(attached)
            admin.http.delete(f"/v1/apiKeys/{asker.api_key.id}").raise_for_status()
            # The socket it opened ends, and it opens no other.
            message = await attached.receive(timeout=30)
            assert message.type == aiohttp.WSMsgType.CLOSE, message
            assert f"API key {asker.api_key.id} revoked" in str(message.extra)
        assert await ws_status(token["cdpUrl"]) == 401


async def test_a_token_needs_the_sessions_scope_to_be_made(
    farm: LocalFarm, sessions: Sessions, make_key: KeyFactory
) -> None:
    with sessions.opened() as session, http_client(farm, make_key("tasks.read").secret) as http:
        assert http.post(f"/v1/sessions/{session['id']}:cdpToken").status_code == 403


async def test_the_cli_and_the_sdk_hand_out_tokens_that_attach(farm: LocalFarm) -> None:
    async with (
        browserfarm.AsyncClient(farm.envoy_url, farm.admin_key) as client,
        client.session() as session,
    ):
        made = await session.cdp_token()
        assert made.cdp_url == f"{session.cdp_url}?token={made.token}"
        assert await ws_status(made.cdp_url) == 101
        printed_token = printed(farm_in_process(farm, "session", "cdp-token", session.id))
        assert printed_token["cdpUrl"].startswith(f"{session.cdp_url}?token=")
        assert await ws_status(printed_token["cdpUrl"]) == 101


async def test_no_log_of_the_farm_keeps_a_token(farm: LocalFarm, sessions: Sessions) -> None:
    marker = f"cdp-token-log-{secrets.token_hex(4)}"
    with sessions.opened() as session, http_client(farm, None) as anonymous:
        token = cdp_token(sessions.http, session["id"])
        anonymous.headers["user-agent"] = marker
        endpoint, _, query = token["discoveryUrl"].partition("?")
        assert anonymous.get(f"{endpoint}/json/version/?{query}").status_code == 200
        assert anonymous.get(f"/v1/tasks?token={token['token']}").status_code == 401
        assert await ws_status(token["cdpUrl"], {"user-agent": marker}) == 101
    logs = sorted(farm.log_dir.glob("*.log"))

    def lines_of_marker() -> int:
        return sum(log.read_text(errors="replace").count(marker) for log in logs)

    # Envoy's access log shows the three requests (without their queries) ...
    await assert_eventually(
        lambda: lines_of_marker() >= 3, within=30, message="Envoy logged no line of the requests"
    )
    envoy_lines = [
        line
        for line in (farm.log_dir / "envoy.log").read_text(errors="replace").splitlines()
        if marker in line
    ]
    assert any("/json/version/?(query withheld)" in line for line in envoy_lines), envoy_lines
    # ... and no log of the farm holds the token.
    holding = [log.name for log in logs if token["token"] in log.read_text(errors="replace")]
    assert holding == []
