"""Browser contexts an attached client makes of its own (`Target.createBrowserContext`).

On the shared farm, over raw CDP (and Playwright's `new_context`): a client that
never sets a download behavior, or that leaves its context behind, still gets
downloads refused, and the context's pages still go through the egress guard.
"""

from pathlib import Path

import pytest
from playwright.async_api import Playwright

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.sessions_api import Sessions
from tests.helpers import assert_eventually
from tests.pages import Site
from tests.raw_cdp import RawCdp, downloads_begun, raw_cdp

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]


async def click_download(cdp: RawCdp, session: str, site: Site, hold: str) -> None:
    """Clicks the page's download link, a file the site holds half sent until gate `hold` opens.

    Returns once the site has begun serving it.
    """
    served = site.hits.get("/download", 0)
    link = f"/download?hold={hold}&times=100000"
    click = f"const a = document.getElementById('dl'); a.href = '{link}'; a.click()"
    await cdp.call("Runtime.evaluate", session, expression=click)
    await assert_eventually(lambda: site.hits.get("/download", 0) > served)


async def test_downloads_are_refused_in_a_context_a_client_makes_without_a_behavior(
    farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    with sessions.opened() as session:
        try:
            async with raw_cdp(session["cdpUrl"], farm.admin_key) as cdp:
                context = (await cdp.call("Target.createBrowserContext"))["browserContextId"]
                page = await cdp.open_page(context, site.url("/mcp/opener"))
                await cdp.hear_downloads()
                # No behavior set: Chromium's own default would begin the download (its
                # folder made, the file received) and decide only then what becomes of it.
                await click_download(cdp, page, site, hold="own-context")
                assert await cdp.download_end() == "canceled"
                assert downloads_begun(Path(farm.home)) == []
        finally:
            site.release("own-context")


async def test_downloads_stay_refused_in_a_context_its_client_left_behind(
    farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    with sessions.opened() as session:
        try:
            async with raw_cdp(session["cdpUrl"], farm.admin_key) as cdp:
                context = (await cdp.call("Target.createBrowserContext"))["browserContextId"]
                # Deny, as the filter allows: Chromium resets it as this connection ends.
                await cdp.call(
                    "Browser.setDownloadBehavior", behavior="deny", browserContextId=context
                )
                await cdp.open_page(context, site.url("/mcp/opener"))
            async with raw_cdp(session["cdpUrl"], farm.admin_key) as cdp:
                targets = (await cdp.call("Target.getTargets"))["targetInfos"]
                (left,) = [t for t in targets if t.get("browserContextId") == context]
                attached = await cdp.call(
                    "Target.attachToTarget", targetId=left["targetId"], flatten=True
                )
                await cdp.hear_downloads()
                await click_download(cdp, attached["sessionId"], site, hold="left-context")
                assert await cdp.download_end() == "canceled"
                assert downloads_begun(Path(farm.home)) == []
        finally:
            site.release("left-context")


async def test_a_playwright_context_of_the_clients_own_hears_its_download_refused(
    farm: LocalFarm, sessions: Sessions, site: Site, playwright: Playwright
) -> None:
    with sessions.opened() as session:
        browser = await playwright.chromium.connect_over_cdp(
            session["cdpUrl"], headers={"authorization": f"Bearer {farm.admin_key}"}
        )
        try:
            # Target.createBrowserContext, then Playwright's own download behavior.
            page = await (await browser.new_context()).new_page()
            await page.goto(site.url("/mcp/opener"))
            async with page.expect_download() as download:
                await page.click("#dl")
            assert await (await download.value).failure() == "canceled"
            assert downloads_begun(Path(farm.home)) == []
        finally:
            await browser.close()


async def test_a_clients_own_context_goes_through_the_egress_guard(
    farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    with sessions.opened() as session:
        async with raw_cdp(session["cdpUrl"], farm.admin_key) as cdp:
            context = (await cdp.call("Target.createBrowserContext"))["browserContextId"]
            page = await cdp.open_page(context, "http://10.0.0.1/")
            body = await cdp.call("Runtime.evaluate", page, expression="document.body.innerText")
            assert "private" in body["result"]["value"], body
