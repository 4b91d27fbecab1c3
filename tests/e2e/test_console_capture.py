"""The console's task form with a PDF's and a screenshot's options, and a session's CDP
attach token, in real Chromium through the test farm's Envoy at /console/."""

import io
import re

import pytest
from PIL import Image
from playwright.async_api import Page, Playwright, expect

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.console_ui import WITHIN_MS, console_url, sign_in
from tests.e2e.sessions_api import Sessions
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.database_neutral]
# All database_neutral: what these tests submit are ordinary tasks and a session's token,
# rows test_console.py's submit and session tests make on PostgreSQL too.


async def submitted_artifact(tab: Page, farm: LocalFarm) -> bytes:
    """Waits for the task the form opened to succeed; its first artifact, through the console."""
    await expect(tab.locator("#task-status")).to_have_text("SUCCEEDED", timeout=WITHIN_MS)
    link = await tab.locator(".artifacts a").first.get_attribute("href")
    artifact = await tab.request.get(f"{farm.envoy_url}{link}")
    assert artifact.ok
    return await artifact.body()


async def test_a_pdf_of_some_pages_is_submitted_from_the_form(
    tab: Page, farm: LocalFarm, console_key: str, site: Site
) -> None:
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, "/tasks"))
    form = tab.locator("#submit-task")
    await form.get_by_label("URL").fill(site.url("/three-pages"))
    await form.get_by_label("Action").select_option("pdf")
    await form.get_by_label("Pages").fill("2-3")
    await form.get_by_label("Margin").fill("1cm")
    await form.get_by_label("Scale").fill("0.8")
    await form.get_by_role("button", name="Submit").click()
    document = await submitted_artifact(tab, farm)
    assert document.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", document)) == 2


async def test_a_clipped_transparent_screenshot_is_submitted_from_the_form(
    tab: Page, farm: LocalFarm, console_key: str, site: Site
) -> None:
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, "/tasks"))
    form = tab.locator("#submit-task")
    await form.get_by_label("URL").fill(site.url("/colour-boxes"))
    await form.get_by_label("Transparent background").check()
    await form.get_by_label("Clip").fill("150,50,120,90")
    await form.get_by_role("button", name="Submit").click()
    image = Image.open(io.BytesIO(await submitted_artifact(tab, farm))).convert("RGBA")
    assert image.size == (120, 90)
    assert image.getpixel((10, 10)) == (0, 0, 255, 255)  # the blue box
    assert image.getchannel("A").getpixel((100, 80)) == 0  # nothing, and no white behind


async def test_an_option_the_farm_refuses_is_shown_at_its_field_as_entered(
    tab: Page, farm: LocalFarm, console_key: str, site: Site
) -> None:
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, "/tasks"))
    form = tab.locator("#submit-task")
    await form.get_by_label("URL").fill(site.url("/three-pages"))
    await form.get_by_label("Action").select_option("pdf")
    await form.get_by_label("Margin").fill("1cm, 2furlongs")
    await form.get_by_label("CSS page size").check()
    await form.get_by_role("button", name="Submit").click()
    # The farm names the side (pdf.margin.right); the form's one field shows it.
    await expect(form.locator("#margin-error")).to_contain_text(
        "pdf.margin.right: must be a length in px, in, cm or mm"
    )
    await expect(form.get_by_label("Margin")).to_have_attribute("aria-invalid", "true")
    await expect(form.get_by_label("Margin")).to_have_value("1cm, 2furlongs")
    await expect(form.get_by_label("CSS page size")).to_be_checked()
    await expect(form.get_by_label("Action")).to_have_value("pdf")


async def test_a_cdp_token_made_on_a_sessions_page_attaches_playwright(
    tab: Page,
    farm: LocalFarm,
    console_key: str,
    site: Site,
    sessions: Sessions,
    playwright: Playwright,
) -> None:
    with sessions.opened() as session:
        sessions.run(session["id"], url=site.url("/box"))
        await sign_in(tab, farm, console_key)
        await tab.goto(console_url(farm, f"/sessions/{session['id']}"))
        await expect(tab.locator("#cdp-token")).to_have_count(0)
        await tab.get_by_role("button", name="Make a CDP attach token").click()
        cdp_url = await tab.locator("#cdp-url").input_value()
        discovery_url = await tab.locator("#discovery-url").input_value()
        expiry = await tab.locator("#cdp-token-expiry time").text_content()
        assert cdp_url.startswith("ws") and f"/v1/sessions/{session['id']}/cdp?token=" in cdp_url
        assert f"/v1/sessions/{session['id']}?token=" in discovery_url
        assert expiry and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", expiry), expiry
        # The page was the POST's answer: the token is in no address.
        assert "token=" not in tab.url
        # Copy puts the URL on the clipboard.
        await tab.context.grant_permissions(["clipboard-read", "clipboard-write"])
        copy = tab.locator("#cdp-token .copy", has=tab.locator("#cdp-url")).get_by_role("button")
        await copy.click()
        await expect(copy).to_have_text("Copied")
        assert await tab.evaluate("navigator.clipboard.readText()") == cdp_url
        # And the discovery URL attaches a CDP client with no key of its own.
        browser = await playwright.chromium.connect_over_cdp(discovery_url)
        try:
            pages = [page for context in browser.contexts for page in context.pages]
            assert [page.url for page in pages] == [site.url("/box")]
        finally:
            await browser.close()


async def test_a_cross_site_post_makes_no_cdp_token(
    tab: Page, farm: LocalFarm, console_key: str, sessions: Sessions
) -> None:
    with sessions.opened() as session:
        await sign_in(tab, farm, console_key)
        refused = await tab.request.post(
            console_url(farm, f"/sessions/{session['id']}/cdp-token"),
            headers={"origin": "http://elsewhere.example", "sec-fetch-site": "cross-site"},
        )
        assert refused.status == 403
        assert "cdp-url" not in await refused.text()
