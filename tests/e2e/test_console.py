"""The web console in real Chromium, through the test farm's Envoy at /console/.

One browser serves the module; each test has its own tab (context) and signs in
with its own key. With FARM_CONSOLE_SCREENSHOTS=<folder> the tests also save a
screenshot of each page there; docs/console.md shows them, saved with
`FARM_CONSOLE_SCREENSHOTS=docs/console .venv/bin/pytest tests/e2e/test_console.py`.
"""

import pytest
from playwright.async_api import Browser, Page, expect

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, http_client, new_tenant, unique_label
from tests.e2e.console_ui import WITHIN_MS, console_url, create_key, shoot, sign_in
from tests.e2e.sessions_api import Sessions
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# Tests of the pages themselves (policy, form checks, layout) are database_neutral: the
# PostgreSQL pass runs the others.


async def test_wrong_key_is_refused_and_no_page_opens(tab: Page, farm: LocalFarm) -> None:
    await sign_in(tab, farm, "bf_not-a-key-of-this-farm")
    await expect(tab.get_by_role("alert")).to_contain_text("Key refused")
    await shoot(tab, "signin")
    assert await tab.context.cookies() == []
    response = await tab.goto(console_url(farm, "/tasks"))
    assert response is not None
    await expect(tab).to_have_url(console_url(farm, "/signin"))


async def test_signed_in_operator_sees_the_fleet_live(
    tab: Page, farm: LocalFarm, console_key: str
) -> None:
    await sign_in(tab, farm, console_key)
    await expect(tab).to_have_url(console_url(farm, "/"))
    agents = tab.locator("#agents tbody tr")
    await expect(agents).to_have_count(farm.config.agents)
    await expect(agents.first).to_contain_text("healthy")
    cookies = await tab.context.cookies()
    assert {cookie["name"] for cookie in cookies} == {"farm_console_key", "farm_console_scopes"}
    for cookie in cookies:
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert await tab.evaluate("document.cookie") == ""
    await shoot(tab, "overview")


# database_neutral: a page check; a key's rate is kept in NATS, its limits' row is
# test_batch_create's too.
@pytest.mark.database_neutral
async def test_a_refresh_the_farm_refuses_says_the_page_is_out_of_date_until_one_succeeds(
    tab: Page, farm: LocalFarm, make_key: KeyFactory, admin: Client
) -> None:
    operator = make_key("admin")
    await sign_in(tab, farm, operator.secret)
    await expect(tab.locator("#agents tbody tr")).to_have_count(farm.config.agents)
    notice = tab.locator("#refresh-failed")
    await expect(notice).to_be_hidden()
    # One call a second: the fleet's refreshes, two a second on this farm, are refused in turn.
    limits = f"/v1/apiKeys/{operator.api_key.id}"
    slowed = admin.http.patch(limits, json={"rateLimitPerSecond": 1, "rateLimitBurst": 1})
    assert slowed.status_code == 200, slowed.text
    await expect(notice).to_be_visible(timeout=WITHIN_MS)
    await expect(notice).to_contain_text("Not refreshed since")
    await expect(notice).to_contain_text("RESOURCE_EXHAUSTED")
    # What it showed before stays, marked out of date rather than wiped.
    await expect(tab.locator("#agents tbody tr")).to_have_count(farm.config.agents)
    restored = admin.http.patch(limits, json={"rateLimitPerSecond": 0, "rateLimitBurst": 0})
    assert restored.status_code == 200, restored.text
    await expect(notice).to_be_hidden(timeout=WITHIN_MS)


async def test_submitted_task_finishes_and_its_screenshot_shows(
    tab: Page, farm: LocalFarm, console_key: str, site: Site, admin: Client
) -> None:
    label = unique_label()["test"]
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, "/tasks"))
    form = tab.locator("#submit-task")
    await form.get_by_label("URL").fill(site.url("/page"))
    await form.get_by_label("Label").fill(f"test={label}")
    await form.get_by_role("button", name="Submit").click()
    await expect(tab.locator("#task-status")).to_have_text("SUCCEEDED", timeout=WITHIN_MS)
    preview = tab.locator("img.preview")
    await expect(preview).to_be_visible()
    await expect(preview).to_have_js_property("complete", True)
    assert await preview.evaluate("image => image.naturalWidth") > 0
    await shoot(tab, "task")
    task_id = tab.url.rsplit("/", 1)[-1]
    assert admin.get(task_id)["spec"]["labels"] == {"test": label}
    # Its artifact opens on its own, as the image it is.
    artifact = await tab.request.get(
        f"{farm.envoy_url}{await tab.locator('.artifacts a').get_attribute('href')}"
    )
    assert artifact.headers["content-type"] == "image/png"
    assert artifact.headers["cache-control"] == "no-store"
    assert (await artifact.body())[:4] == b"\x89PNG"
    await tab.goto(console_url(farm, f"/tasks?label=test={label}"))
    await expect(tab.locator("#task-rows tr")).to_have_count(1)
    await shoot(tab, "tasks")


async def test_failed_task_shows_its_error_and_its_dead_letter_is_requeued(
    tab: Page, farm: LocalFarm, console_key: str, site: Site, admin: Client
) -> None:
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, "/tasks"))
    form = tab.locator("#submit-task")
    await form.get_by_label("URL").fill(site.url("/page"))
    await form.get_by_label("Element").fill("#nowhere-on-the-page")
    await form.get_by_label("Attempts").fill("1")
    await form.get_by_label("Timeout (ms)").fill("1000")  # the shortest: it waits it out twice
    await form.get_by_role("button", name="Submit").click()
    await expect(tab.locator("#task-status")).to_have_text("FAILED", timeout=WITHIN_MS)
    task_id = tab.url.rsplit("/", 1)[-1]
    error = admin.get(task_id)["error"]
    await expect(tab.locator("#task-error")).to_contain_text(error["code"])
    await tab.goto(console_url(farm, "/deadletters"))
    row = tab.locator("#dead-letters tr", has_text=task_id)
    await expect(row).to_contain_text(error["code"])
    await shoot(tab, "deadletters")
    await row.get_by_role("button", name="Requeue").click()
    await expect(tab.get_by_role("status")).to_contain_text(f"Task {task_id} requeued")
    # The operator's own tenant's task: the notice links to its Task page.
    await tab.get_by_role("status").get_by_role("link", name=task_id).click()
    await expect(tab.get_by_role("heading", level=1)).to_contain_text(task_id)
    # A link cannot make the page claim a requeue.
    await tab.goto(console_url(farm, "/deadletters?requeued=ANY"))
    await expect(tab.locator("#dead-letters")).to_be_visible()
    assert await tab.get_by_role("status").count() == 0
    # Requeued, it runs (and fails) once more.
    retried = admin.wait_for_status(task_id, "TASK_STATUS_FAILED", within=60)
    assert len(retried["attemptHistory"]) == 2


async def test_an_operator_opens_another_tenants_dead_letter_and_its_admin_only_its_own(
    tab: Page, farm: LocalFarm, console_key: str, site: Site, make_key: KeyFactory
) -> None:
    keys = {
        tenant: make_key("admin", "tasks.write", "tasks.read", tenant=tenant).secret
        for tenant in (new_tenant("dead-a"), new_tenant("dead-b"))
    }
    (tenant, key), (_, other_key) = keys.items()
    failing = {
        "url": site.url("/page"),
        "screenshot": {"selector": "#nowhere-on-the-page"},
        "maxAttempts": 1,
        "timeoutMs": 1000,
    }
    with http_client(farm, key) as http:
        owner = Client(http, key)
        task_id = owner.create(failing)["id"]
        error = owner.wait_for_status(task_id, "TASK_STATUS_FAILED", within=60)["error"]
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, "/deadletters"))
    await tab.locator("#dead-letters tr", has_text=task_id).get_by_role("link").click()
    await expect(tab.get_by_role("heading", level=1)).to_have_text(f"Dead letter {task_id}")
    await expect(tab.locator("#dead-letter")).to_contain_text(f"Tenant {tenant}")
    await expect(tab.locator("#task-error")).to_contain_text(error["code"])
    # Another tenant's admin sees neither the row nor the page.
    await tab.context.clear_cookies()
    await sign_in(tab, farm, other_key)
    await tab.goto(console_url(farm, "/deadletters"))
    await expect(tab.locator("#dead-letters")).to_be_visible()
    assert await tab.locator("#dead-letters tr", has_text=task_id).count() == 0
    response = await tab.goto(console_url(farm, f"/deadletters/{task_id}"))
    assert response is not None and response.status == 404
    # The operator requeues it from its page; its Task page would be 404 (another
    # tenant's task), so the notice says so and links nowhere.
    await tab.context.clear_cookies()
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, f"/deadletters/{task_id}"))
    await tab.get_by_role("button", name="Requeue").click()
    notice = tab.get_by_role("status")
    await expect(notice).to_contain_text(f"Task {task_id} requeued. It has no Task page here")
    await expect(notice).to_contain_text("another tenant's task")
    assert await notice.get_by_role("link").count() == 0


@pytest.mark.database_neutral
async def test_pages_carry_a_strict_policy_and_refuse_cross_site_posts(
    tab: Page, farm: LocalFarm
) -> None:
    response = await tab.goto(console_url(farm, "/signin"))
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert await tab.locator("script:not([src])").count() == 0
    refused = await tab.request.post(
        console_url(farm, "/signin"),
        form={"key": "anything"},
        headers={"origin": "http://elsewhere.example", "sec-fetch-site": "cross-site"},
    )
    assert refused.status == 403


async def test_open_session_shows_live_and_is_closed_from_its_page(
    tab: Page, farm: LocalFarm, console_key: str, site: Site, sessions: Sessions
) -> None:
    session = sessions.create()
    try:
        sessions.run(session["id"], url=site.url("/box"))
        await sign_in(tab, farm, console_key)
        await tab.goto(console_url(farm, "/sessions"))
        row = tab.locator("#sessions tr", has_text=session["id"])
        await row.get_by_role("link").click()
        await shoot(tab, "session")
        async with tab.context.expect_page() as opened:
            await tab.locator("#live-view").click()
        live = await opened.value
        await expect(live.locator("#state")).to_have_text("live", timeout=15_000)
        await live.close()
        await tab.get_by_role("button", name="Close").click()
        await expect(tab).to_have_url(console_url(farm, "/sessions"))
        await expect(tab.locator("#sessions tr", has_text=session["id"])).to_have_count(0)
        assert sessions.get(session["id"])["state"] == "SESSION_STATE_CLOSED"
    finally:
        sessions.close(session["id"])


async def test_key_made_on_the_keys_page_works_is_audited_and_is_revoked(
    tab: Page, farm: LocalFarm, console_key: str
) -> None:
    name = f"console-{unique_label()['test']}"
    await sign_in(tab, farm, console_key)
    await create_key(tab, farm, name)
    secret = await tab.locator("#new-secret").text_content()
    assert secret
    with http_client(farm, secret) as http:
        whoami = http.get("/v1/whoami").json()
        assert whoami["scopes"] == ["tasks.read"]
        await shoot(tab, "keys")
        audited = tab.locator("#audit tr", has_text=whoami["keyId"])

        async def audit_page_shows_the_key() -> bool:
            # Audit records are written a moment after the call (auth gathers them into
            # batched inserts): the page is loaded again until its record is there.
            await tab.goto(console_url(farm, "/audit?rpc=CreateApiKey"))
            return await audited.count() == 1

        await assert_eventually(
            audit_page_shows_the_key, within=15, interval=0.5, message="no audit record"
        )
        await shoot(tab, "audit")
        await tab.goto(console_url(farm, "/keys"))
        await tab.locator("#keys tr", has_text=name).get_by_role("button", name="Revoke").click()
        await expect(tab.locator("#keys tr", has_text=name)).not_to_contain_text("Revoke")
        assert http.get("/v1/whoami").status_code == 401


async def test_the_same_task_form_sent_twice_makes_one_task(
    tab: Page, farm: LocalFarm, console_key: str, site: Site, admin: Client
) -> None:
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, "/tasks"))
    token = await tab.locator("#submit-task input[name=formToken]").input_value()
    # As a double click or a browser's resend sends it: the same form, twice.
    form: dict[str, str | float | bool] = {
        "url": site.url("/page"),
        "priority": "LOW",
        "formToken": token,
    }
    places = []
    for _ in range(2):
        answer = await tab.request.post(
            console_url(farm, "/tasks"),
            form=form,
            headers={"origin": farm.envoy_url},
            max_redirects=0,
        )
        assert answer.status == 303
        places.append(answer.headers["location"])
    assert places[0] == places[1]
    task_id = places[0].rsplit("/", 1)[-1]
    assert admin.get(task_id)["spec"]["idempotencyKey"] == token.split(".")[0]


@pytest.mark.database_neutral
async def test_refused_task_form_keeps_what_was_entered_and_names_the_field(
    tab: Page, farm: LocalFarm, console_key: str, site: Site
) -> None:
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, "/tasks"))
    form = tab.locator("#submit-task")
    await form.get_by_label("URL").fill(site.url("/page"))
    await form.get_by_label("full page").check()
    await form.get_by_label("Label").fill("not a key=v")
    await form.get_by_role("button", name="Submit").click()
    # The refusal sits at the field it names, and nothing entered is lost.
    await expect(form.locator("#label-error")).to_contain_text("labels:")
    await expect(form.get_by_label("Label")).to_have_attribute("aria-invalid", "true")
    await expect(form.get_by_label("URL")).to_have_value(site.url("/page"))
    await expect(form.get_by_label("full page")).to_be_checked()
    # A number the browser would stop is refused by the console too, never dropped.
    token = await form.locator("input[name=formToken]").input_value()
    for value in ("-5", "1.5", "99999999999999"):
        answer = await tab.request.post(
            console_url(farm, "/tasks"),
            form={"url": site.url("/page"), "timeoutMs": value, "formToken": token},
            headers={"origin": farm.envoy_url},
            max_redirects=0,
        )
        assert answer.status == 400, value
        assert 'id="timeoutMs-error"' in await answer.text()


@pytest.mark.database_neutral
async def test_a_key_lifetime_that_is_no_whole_number_is_refused_not_dropped(
    tab: Page, farm: LocalFarm, console_key: str
) -> None:
    name = f"console-{unique_label()['test']}"
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, "/keys"))
    # A refused form's token stays good: the same form is sent again, corrected.
    token = await tab.locator("#create-key input[name=formToken]").input_value()
    for lifetime in ("-60", "1.5", "99999999999999999999999"):
        answer = await tab.request.post(
            console_url(farm, "/keys"),
            form={"name": name, "scopes": "tasks.read", "ttlSeconds": lifetime, "formToken": token},
            headers={"origin": farm.envoy_url},
        )
        assert answer.status == 400, lifetime
        assert 'id="ttlSeconds-error"' in await answer.text()
    await tab.goto(console_url(farm, "/keys"))
    await expect(tab.locator("#keys tr", has_text=name)).to_have_count(0)
    await expect(tab.locator("#create-key").get_by_label("Name")).to_have_value("")


@pytest.mark.database_neutral
async def test_a_key_that_is_no_bearer_token_is_refused_on_the_sign_in_page(
    tab: Page, farm: LocalFarm
) -> None:
    await sign_in(tab, farm, "bf_ключ")
    await expect(tab.get_by_role("alert")).to_contain_text("Key refused")
    assert await tab.context.cookies() == []


@pytest.mark.database_neutral
async def test_a_tenant_admin_is_told_why_the_fleet_is_not_shown(
    tab: Page, farm: LocalFarm, make_key: KeyFactory
) -> None:
    tenant_admin = make_key("admin", tenant=f"console-{unique_label()['test']}").secret
    await sign_in(tab, farm, tenant_admin)
    await expect(tab.locator("#fleet-refused")).to_contain_text("bootstrap tenant")
    await expect(tab.locator("#agents")).to_have_count(0)


async def test_a_closed_session_offers_neither_close_nor_live_view(
    tab: Page, farm: LocalFarm, console_key: str, sessions: Sessions
) -> None:
    session = sessions.create()
    sessions.close(session["id"])
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, f"/sessions/{session['id']}"))
    await expect(tab.locator("main")).to_contain_text("CLOSED")
    await expect(tab.get_by_role("button", name="Close")).to_have_count(0)
    await expect(tab.locator("#live-view")).to_have_count(0)


@pytest.mark.database_neutral
async def test_on_a_phone_the_whole_header_is_on_screen(
    browser: Browser, farm: LocalFarm, console_key: str
) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = await context.new_page()
        await sign_in(page, farm, console_key)
        for path in ("/", "/tasks", "/audit"):
            await page.goto(console_url(farm, path))
            await expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
            widths = "[document.documentElement.scrollWidth, window.innerWidth]"
            page_width, screen_width = await page.evaluate(widths)
            assert page_width <= screen_width, path
    finally:
        await context.close()
