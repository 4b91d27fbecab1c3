"""Clients of their own attached to sessions through Envoy: Playwright, Puppeteer, raw CDP.

On the shared farm; what an attached client may see and reach.
"""

import asyncio
import json
import secrets
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Playwright

from farm_agent.browser.chromium import CHROMIUM_FLAGS
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, http_client
from tests.e2e.sessions_api import Sessions, assert_drives, cdp_call, cdp_status, close_frame_of
from tests.helpers import assert_eventually
from tests.pages import Site
from tests.raw_cdp import downloads_begun, raw_cdp

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]


async def test_playwright_attaches_through_envoy_and_drives_the_sessions_page(
    farm: LocalFarm, sessions: Sessions, site: Site, playwright: Playwright
) -> None:
    session = sessions.create()
    try:
        sessions.run(session["id"], url=site.url("/form"))
        browser = await playwright.chromium.connect_over_cdp(
            session["cdpUrl"], headers={"authorization": f"Bearer {farm.admin_key}"}
        )
        try:
            (page,) = [page for context in browser.contexts for page in context.pages]
            assert await page.title() == "Form"
            await page.fill("#q", "typed over CDP")
            await page.click("#go")
        finally:
            await browser.close()
        # The command API sees what the attached client did.
        result = sessions.run(session["id"], extract={"fields": {"out": "#out"}})
        assert result["json"] == {"out": "You asked: typed over CDP"}
    finally:
        sessions.close(session["id"])


PUPPETEER = Path(__file__).parent / "puppeteer"
NODE = shutil.which("node")


@pytest.mark.skipif(
    NODE is None or not (PUPPETEER / "node_modules" / "puppeteer-core").is_dir(),
    reason="needs Node.js and `make node-deps` (puppeteer-core)",
)
def test_puppeteer_connects_through_envoy_and_drives_the_sessions_page(
    farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    session = sessions.create()
    try:
        assert NODE is not None
        attached = subprocess.run(
            [
                NODE,
                str(PUPPETEER / "attach.mjs"),
                session["cdpUrl"],
                farm.admin_key,
                site.url("/form"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert attached.returncode == 0, attached.stderr
        assert json.loads(attached.stdout) == {"title": "Form", "pages": 1}
        value = sessions.run(
            session["id"], script={"source": "() => document.querySelector('#q').value"}
        )
        assert value["json"] == "typed by puppeteer"
    finally:
        sessions.close(session["id"])


async def test_a_cdp_client_sees_only_its_own_sessions_targets(
    farm: LocalFarm, sessions: Sessions, make_key: KeyFactory, site: Site
) -> None:
    mine = sessions.create()
    other_key = make_key("sessions", tenant="session-neighbour")
    with http_client(farm, other_key.secret) as http:
        theirs = Sessions(http).create()
        try:
            Sessions(http).run(theirs["id"], url=site.url("/box"))
            sessions.run(mine["id"], url=site.url("/page"))
            targets = await cdp_call(mine["cdpUrl"], farm.admin_key, "Target.getTargets", {})
            urls = {t["url"] for t in targets["targetInfos"] if t["type"] == "page"}
            assert urls == {site.url("/page")}
            # Another tenant's key does not reach this session's browser at all.
            refused = await cdp_status(mine["cdpUrl"], other_key.secret)
            assert refused == 404
        finally:
            Sessions(http).close(theirs["id"])
            sessions.close(mine["id"])


async def test_cdp_attach_is_refused_without_a_key_or_the_sessions_scope(
    farm: LocalFarm, sessions: Sessions, make_key: KeyFactory
) -> None:
    session = sessions.create()
    try:
        assert await cdp_status(session["cdpUrl"], None) == 401
        assert await cdp_status(session["cdpUrl"], "bf_not-a-key") == 401
        assert await cdp_status(session["cdpUrl"], make_key("tasks.read").secret) == 403
        # The public API: `sessions` alone attaches (FARM_AUTH_CDP_NEEDS_SCRIPT asks for more).
        assert await cdp_status(session["cdpUrl"], make_key("sessions").secret) == 101
        unknown = session["cdpUrl"].replace(session["id"], "ses_0000000000000000")
        assert await cdp_status(unknown, farm.admin_key) == 404
    finally:
        sessions.close(session["id"])
    # Closed: its browser is gone, and so is the way to it.
    assert await cdp_status(session["cdpUrl"], farm.admin_key) == 404


async def test_an_attached_client_cannot_reach_farm_or_private_addresses(
    farm: LocalFarm, sessions: Sessions, playwright: Playwright
) -> None:
    session = sessions.create()
    try:
        browser = await playwright.chromium.connect_over_cdp(
            session["cdpUrl"], headers={"authorization": f"Bearer {farm.admin_key}"}
        )
        try:
            page = browser.contexts[0].pages[0]
            nats_port = farm.config.ports.nats
            for target, why in (
                (f"http://127.0.0.1:{nats_port}/", "one of the farm's own services"),
                ("http://10.0.0.1/", "private"),
                ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
            ):
                # The egress guard answers in the proxy's place: no connection is made.
                response = await page.goto(target, timeout=10000)
                assert response is not None and response.status == 403, target
                body = await page.text_content("body")
                assert body is not None and why in body, target
            with pytest.raises(Exception, match="ERR_TUNNEL_CONNECTION_FAILED"):
                await page.goto("https://10.0.0.1/", timeout=10000)
            # A context of its own with its own proxy is refused by the filter.
            with pytest.raises(Exception, match="egress guard"):
                await browser.new_context(proxy={"server": "http://10.0.0.1:3128"})
        finally:
            await browser.close()
    finally:
        closed = sessions.close(session["id"])
    assert closed["closeReason"] == "CLOSED_BY_USER"


async def test_the_live_view_goes_back_to_the_page_left_when_a_clients_page_closes(
    farm: LocalFarm, sessions: Sessions, site: Site, playwright: Playwright
) -> None:
    session = sessions.create()
    try:
        sessions.run(session["id"], url=site.url("/page"))
        client = await playwright.chromium.connect_over_cdp(
            session["cdpUrl"], headers={"authorization": f"Bearer {farm.admin_key}"}
        )
        try:
            # A page of the client's own (current while it lives), then closed.
            own = await client.contexts[0].new_page()
            await own.goto(site.url("/form"))
            await own.close()
        finally:
            await client.close()
        token = sessions.http.post(f"/v1/sessions/{session['id']}:viewToken").json()
        viewer = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = await viewer.new_page()
            await page.goto(token["url"])
            # The session's page is still; its screen must come at once all the same.
            # Polled with evaluate: the view's CSP forbids eval, which wait_for_function uses.
            await assert_eventually(
                lambda: page.evaluate("() => document.getElementById('screen').naturalWidth > 0"),
                within=15,
                message="the live view showed no frame after the client's page closed",
            )
        finally:
            await viewer.close()
    finally:
        sessions.close(session["id"])


def test_a_view_token_and_its_ticket_end_when_the_key_that_asked_for_them_is_revoked(
    farm: LocalFarm, admin: Client, make_key: KeyFactory
) -> None:
    tenant = f"viewer-{secrets.token_hex(4)}"
    asker, closer = make_key("sessions", tenant=tenant), make_key("sessions", tenant=tenant)
    with http_client(farm, asker.secret) as http, http_client(farm, None) as browser:
        session = Sessions(http).create()
        try:
            spent, unspent = (
                http.post(f"/v1/sessions/{session['id']}:viewToken").json()["url"] for _ in range(2)
            )
            opened = browser.get(spent)
            assert opened.status_code == 200
            live = f"/v1/sessions/{session['id']}/live"
            assert browser.get(live).status_code == 200  # with the ticket cookie
            admin.http.delete(f"/v1/apiKeys/{asker.api_key.id}").raise_for_status()
            assert browser.get(live).status_code == 401
            browser.cookies.clear()
            assert browser.get(unspent).status_code == 401
        finally:
            with http_client(farm, closer.secret) as other:
                Sessions(other).close(session["id"])


def test_a_view_token_is_spent_only_by_its_own_sessions_live_page(
    farm: LocalFarm, sessions: Sessions
) -> None:
    first, second = sessions.create(), sessions.create()
    try:
        url = sessions.http.post(f"/v1/sessions/{first['id']}:viewToken").json()["url"]
        query = url[url.index("?") :]
        elsewhere = (
            f"/v1/sessions/{second['id']}/live",
            "/v1/sessions/ses_0000000000000000/live",
            f"/v1/sessions/{first['id']}/live/frames",
            f"/v1/sessions/{first['id']}/live/no-such-file",
        )
        with http_client(farm, None) as browser:
            refused = {path: browser.get(path + query).status_code for path in elsewhere}
            assert refused == dict.fromkeys(elsewhere, 401)
            assert not browser.cookies
            assert browser.get(url).status_code == 200
            assert browser.get(url).status_code == 401  # spent by its own page, once
    finally:
        sessions.close(first["id"])
        sessions.close(second["id"])


async def test_revoking_a_key_ends_the_sockets_it_opened_and_leaves_the_session_open(
    farm: LocalFarm, admin: Client, make_key: KeyFactory
) -> None:
    tenant = f"revoker-{secrets.token_hex(4)}"
    revoked, kept = make_key("sessions", tenant=tenant), make_key("sessions", tenant=tenant)
    with http_client(farm, kept.secret) as http:
        sessions = Sessions(http)
        session = sessions.create()
        cdp = session["cdpUrl"]
        frames = cdp.removesuffix("/cdp") + "/live/frames"
        try:
            async with aiohttp.ClientSession() as client:
                doomed = {"Authorization": f"Bearer {revoked.secret}"}
                doomed_cdp = await client.ws_connect(cdp, headers=doomed)
                doomed_view = await client.ws_connect(frames, headers=doomed)
                other = await client.ws_connect(
                    cdp, headers={"Authorization": f"Bearer {kept.secret}"}
                )
                ends = [asyncio.create_task(close_frame_of(s)) for s in (doomed_cdp, doomed_view)]
                try:
                    admin.http.delete(f"/v1/apiKeys/{revoked.api_key.id}").raise_for_status()
                    await assert_eventually(
                        lambda: all(end.done() for end in ends),
                        within=15,
                        message="the revoked key's sockets stayed open",
                    )
                    reason = f"API key {revoked.api_key.id} revoked"
                    assert [end.result() for end in ends] == [(1008, reason)] * 2
                    # Another key's socket on the same session still drives its browser.
                    await assert_drives(other)
                finally:
                    for end in ends:
                        end.cancel()
                    await other.close()
            assert sessions.get(session["id"])["state"] == "SESSION_STATE_ACTIVE"
        finally:
            sessions.close(session["id"])


async def test_downloads_stay_refused_after_an_attached_client_leaves(
    farm: LocalFarm, sessions: Sessions, site: Site, playwright: Playwright
) -> None:
    session = sessions.create()
    try:
        sessions.run(session["id"], url=site.url("/mcp/opener"))
        # Playwright sets the download behavior as it attaches (the filter turns it to
        # deny); Chromium puts back its default, which saves, as that connection ends.
        browser = await playwright.chromium.connect_over_cdp(
            session["cdpUrl"], headers={"authorization": f"Bearer {farm.admin_key}"}
        )
        await browser.close()
        async with raw_cdp(session["cdpUrl"], farm.admin_key) as listener:
            await listener.hear_downloads()
            result = sessions.run(session["id"], steps=[{"click": "#dl"}])
            assert result["refusedDownloads"] == [
                {"url": site.url("/download"), "suggestedFilename": "file.bin"}
            ]
            assert await listener.download_end() == "canceled"
        assert downloads_begun(Path(farm.home)) == []
    finally:
        sessions.close(session["id"])
