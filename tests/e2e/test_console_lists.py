"""The web console's lists page on, and its pages show labels, cached tasks and new keys right.

Same farm, browser and tabs as test_console.py (the fixtures live in conftest.py).
"""

import pytest
from playwright.async_api import Page, expect

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, http_client, unique_label
from tests.e2e.console_ui import console_replica, console_url, create_key, sign_in
from tests.e2e.sessions_api import Sessions
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def cached_tasks(farm: LocalFarm, site: Site) -> tuple[str, list[str]]:
    """51 tasks of one label, all but the first answered from the result cache (no browser).

    Their second label's value is markup, which the pages must show as text.
    """
    label = unique_label()["test"]
    spec = {
        "url": site.url("/page"),
        "screenshot": {},
        "cacheTtlSeconds": 3600,
        "labels": {"test": label, "note": "<i>markup</i>"},
    }
    with http_client(farm, farm.admin_key) as http:
        first = Client(http, farm.admin_key).run(spec)
        assert first["status"] == "TASK_STATUS_SUCCEEDED", first
        answer = http.post("/v1/tasks:batchCreate", json={"requests": [spec] * 50})
        assert answer.status_code == 200, answer.text
        cached = answer.json()["tasks"]
    assert all(task.get("cached") for task in cached), cached[0]
    return label, [task["id"] for task in cached]


async def test_the_task_list_pages_on_keeping_its_filter(
    tab: Page, farm: LocalFarm, console_key: str, cached_tasks: tuple[str, list[str]]
) -> None:
    label, _ = cached_tasks
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, f"/tasks?label=test={label}"))
    await expect(tab.locator("#task-rows tr")).to_have_count(50)
    await tab.locator("#next-page").click()
    await expect(tab.locator("#task-rows tr")).to_have_count(1)
    assert f"label=test%3D{label}" in tab.url and "pageToken=" in tab.url
    await expect(tab.locator("#next-page")).to_have_count(0)


async def test_dead_letters_and_sessions_page_on(
    tab: Page, farm: LocalFarm, console_key: str, site: Site, admin: Client, sessions: Sessions
) -> None:
    failing = {
        "url": site.url("/page"),
        "screenshot": {"selector": "#nowhere-on-the-page"},
        "maxAttempts": 1,
        "timeoutMs": 1000,
    }
    for task in [admin.create(failing), admin.create(failing)]:
        admin.wait_for_status(task["id"], "TASK_STATUS_FAILED", within=60)
    opened = [sessions.create(), sessions.create()]
    try:
        await sign_in(tab, farm, console_key)
        for path, rows in (
            ("/deadletters", "#dead-letters tbody tr"),
            ("/sessions", "#sessions tbody tr"),
        ):
            await tab.goto(console_url(farm, f"{path}?pageSize=1"))
            first = await tab.locator(rows).first.text_content()
            await expect(tab.locator(rows)).to_have_count(1)
            await tab.locator("#next-page").click()
            await expect(tab.locator(rows)).to_have_count(1)
            assert "pageSize=1" in tab.url, path
            assert await tab.locator(rows).first.text_content() != first, path
    finally:
        for session in opened:
            sessions.close(session["id"])


async def test_a_tasks_labels_show_as_text_in_the_list_and_on_its_page(
    tab: Page, farm: LocalFarm, console_key: str, cached_tasks: tuple[str, list[str]]
) -> None:
    label, ids = cached_tasks
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, f"/tasks?label=test={label}"))
    row = tab.locator("#task-rows tr", has_text=ids[0])
    await expect(row.locator(".labels")).to_contain_text("note=<i>markup</i>")
    await expect(row.locator(".labels")).to_contain_text(f"test={label}")
    await tab.goto(console_url(farm, f"/tasks/{ids[0]}"))
    await expect(tab.locator("#task-labels")).to_contain_text("note=<i>markup</i>")
    await expect(tab.locator("#task-labels i")).to_have_count(0)


async def test_a_task_answered_from_the_cache_says_so(
    tab: Page, farm: LocalFarm, console_key: str, cached_tasks: tuple[str, list[str]]
) -> None:
    _, ids = cached_tasks
    await sign_in(tab, farm, console_key)
    await tab.goto(console_url(farm, f"/tasks/{ids[0]}"))
    await expect(tab.locator("#task-status")).to_have_text("SUCCEEDED")
    await expect(tab.locator("#task-cached")).to_contain_text("result cache")
    await expect(tab.locator("#task")).not_to_contain_text("Attempts")


async def test_the_header_links_only_pages_the_keys_scopes_allow(
    tab: Page, farm: LocalFarm, make_key: KeyFactory
) -> None:
    await sign_in(tab, farm, make_key("tasks.read").secret)
    await expect(tab).to_have_url(console_url(farm, "/"))
    nav = tab.locator("header nav")
    await expect(nav.get_by_role("link", name="Tasks")).to_be_visible()
    for hidden in ("Sessions", "Dead letters", "Keys & tenant", "Audit log"):
        await expect(nav.get_by_role("link", name=hidden)).to_have_count(0)
    # The pages still refuse on their own.
    response = await tab.goto(console_url(farm, "/audit"))
    assert response is not None and response.status == 403
    await expect(tab.get_by_role("alert")).to_contain_text("PERMISSION_DENIED")


async def test_submitting_the_new_key_form_again_creates_no_second_key(
    tab: Page, farm: LocalFarm, console_key: str
) -> None:
    name = f"console-{unique_label()['test']}"
    await sign_in(tab, farm, console_key)
    token = await create_key(tab, farm, name)
    # What a reload of this page sends: the same form again.
    again = await tab.request.post(
        console_url(farm, "/keys"),
        form={"name": name, "scopes": "tasks.read", "formToken": token},
        headers={"origin": farm.envoy_url},
    )
    assert again.status == 409
    assert 'id="already-created"' in await again.text()
    assert 'id="new-secret"' not in await again.text()
    # The same reload that a load balancer sends to another replica, which never saw the form.
    async with console_replica(farm, console_key) as replica:
        elsewhere = await replica.post(
            "/console/keys", data={"name": name, "scopes": "tasks.read", "formToken": token}
        )
        assert elsewhere.status_code == 409, elsewhere.text
        assert 'id="already-created"' in elsewhere.text
        # The same form changed after it made its key makes none either.
        changed = await replica.post(
            "/console/keys", data={"name": name, "scopes": "tasks.write", "formToken": token}
        )
        assert changed.status_code == 409, changed.text
    await tab.goto(console_url(farm, "/keys"))
    await expect(tab.locator("#keys tr", has_text=name)).to_have_count(1)
