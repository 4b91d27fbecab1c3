"""Warm contexts: kept per tenant, and reset so that no task finds another's state."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Dialog
from playwright.async_api import Error as PlaywrightError

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser import reset
from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner, Budget
from farm_agent.errors import TaskFailure
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import agent_settings, running_pool
from tests.pages import Site

pytestmark = pytest.mark.integration

WARM = tasks_pb2.ISOLATION_WARM
# A spinning page's reset waits out half of it; short of the default 5 s, still ample to
# reset a context.
CLOSE_TIMEOUT = 3.0
NOTHING_FOUND = {
    "cookie": "",
    "cookieHeader": "",
    "local": [],
    "session": [],
    "indexedDB": [],
    "caches": [],
    "serviceWorkers": 0,
    "controlled": False,
    "name": "",
    "notifications": "prompt",
    "geolocation": "prompt",
}


def state_task(site: Site, path: str, **fields: Any) -> tasks_pb2.TaskSpec:
    """A warm task that opens `path` and returns its text once #done shows."""
    return tasks_pb2.TaskSpec(
        url=site.url(path),
        content=tasks_pb2.ContentOptions(format=tasks_pb2.CONTENT_FORMAT_TEXT),
        steps=[tasks_pb2.Step(wait_for="#done")],
        isolation=WARM,
        timeout_ms=20_000,
        **fields,
    )


def found_state(text: str) -> dict[str, Any]:
    """The /find-state report in a task's text."""
    report: dict[str, Any] = json.loads(text.split("\n", 1)[0])
    return report


@pytest.fixture(scope="module")
async def module_warm_pool(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[BrowserPool, BrowserSpecRunner]]:
    """One pool of at most two warm contexts for the module (launching Chromium takes a while)."""
    # A short FARM_HOME keeps Chromium's socket path under the scratch directory.
    settings = agent_settings(
        tmp_path_factory.mktemp("h"),
        warm_contexts=2,
        max_browsers=1,
        close_timeout_seconds=CLOSE_TIMEOUT,
    )
    async with running_pool(settings) as pool:
        yield pool, BrowserSpecRunner(pool, settings)


@pytest.fixture
async def warm_pool(
    module_warm_pool: tuple[BrowserPool, BrowserSpecRunner],
) -> AsyncIterator[tuple[BrowserPool, BrowserSpecRunner]]:
    """The module's pool as a new one would be: no warm context kept, its own memory limit."""
    pool, _ = module_warm_pool
    await pool.warm.close()
    limit_bytes = pool.warm.memory.limit_bytes
    yield module_warm_pool
    pool.warm.memory.limit_bytes = limit_bytes


async def test_no_task_finds_state_a_task_left_in_the_same_warm_context(
    warm_pool: tuple[BrowserPool, BrowserSpecRunner], site: Site
) -> None:
    """Task A of tenant T writes every kind of state; B of T and C of U find none of it.

    A's page writes what a page can (cookies, storages, IndexedDB, cache storage, a
    service worker, window.name, an HTTP-cached script); the test adds what only the
    browser can (an HttpOnly cookie, permission grants, a geolocation override, an open
    pop-up, a pending dialog) while A's lease is held. C runs on the very same context:
    the pool never hands T's context to U, but the reset alone must leave nothing.
    """
    pool, runner = warm_pool
    leave, find = state_task(site, "/leave-state"), state_task(site, "/find-state")
    options = runner.context_options(leave)
    async with pool.warm.lease("T", options, "task A") as warm:
        assert warm is not None
        capture = await runner.run_warm(leave, warm, Budget(20))
        assert "written" in capture.result.text
        context = warm.context
        await context.add_cookies(
            [{"url": site.base_url, "name": "hidden", "value": "A", "httpOnly": True}]
        )
        await context.grant_permissions(["notifications", "geolocation"], origin=site.base_url)
        await context.set_geolocation({"latitude": 12.5, "longitude": 34.5})
        # What the probes see before the reset: everything is there to be found.
        before = found_state((await runner.run_warm(find, warm, Budget(20))).result.text)
        assert before["local"] == ["leak"] and before["session"] == ["leak"]
        assert before["indexedDB"] == ["leakdb"] and before["caches"] == ["leak-cache"]
        assert before["serviceWorkers"] == 1 and before["name"] == "leak-name"
        assert "hidden=A" in before["cookieHeader"] and "leak=page" in before["cookie"]
        assert before["notifications"] == "granted" and before["position"] == "12.5,34.5"
        await warm.page.evaluate("window.open('/page')")
        await assert_eventually(lambda: len(context.pages) == 2, within=5)
        pending: list[Dialog] = []

        def hold(dialog: Dialog) -> None:
            pending.append(dialog)  # held, never answered

        context.on("dialog", hold)
        await warm.page.evaluate("setTimeout(() => alert('still here'), 0)")
        await assert_eventually(lambda: len(pending) == 1, within=5)
    context.remove_listener("dialog", hold)
    cached_loads = site.hit("/cached.js")

    capture = await runner.run(find, tenant="T")
    assert [kept.context for kept in pool.warm.kept] == [context]
    found_by_b = found_state(capture.result.text)
    assert {name: found_by_b[name] for name in NOTHING_FOUND} == NOTHING_FOUND
    assert found_by_b["history"] <= 2
    assert site.hit("/cached.js") == cached_loads + 2  # fetched again: the cache was cleared

    async with pool.warm.lease("T", options, "task C of tenant U") as warm:
        assert warm is not None and warm.context is context and len(context.pages) == 1
        # Granted again to see whether the overridden position is still there.
        await context.grant_permissions(["geolocation"], origin=site.base_url)
        found_by_c = found_state((await runner.run_warm(find, warm, Budget(20))).result.text)
    # The permissions are C's own grant (B found none); all else is as B found it.
    unchanged = set(NOTHING_FOUND) - {"notifications", "geolocation"}
    assert {name: found_by_c[name] for name in unchanged} == {
        name: NOTHING_FOUND[name] for name in unchanged
    }
    assert found_by_c["position"] != "12.5,34.5"


async def test_a_warm_page_that_will_not_leave_is_replaced_and_the_context_kept(
    warm_pool: tuple[BrowserPool, BrowserSpecRunner], site: Site
) -> None:
    """A page spinning in a loop never reaches about:blank: a new page takes its place."""
    pool, runner = warm_pool
    find = state_task(site, "/find-state")
    async with pool.warm.lease("T", runner.context_options(find), "spinning") as warm:
        assert warm is not None
        await runner.run_warm(find, warm, Budget(20))
        context, spinning = warm.context, warm.page
        await warm.page.evaluate("setTimeout(() => { for (;;) {} }, 0)")
    await pool.warm.resets_done()
    assert [kept.context for kept in pool.warm.kept] == [context] and spinning.is_closed()

    capture = await runner.run(find, tenant="T")
    assert [kept.context for kept in pool.warm.kept] == [context]
    assert found_state(capture.result.text)["local"] == []


async def test_a_slow_page_replacement_still_keeps_the_context(
    warm_pool: tuple[BrowserPool, BrowserSpecRunner], site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a loaded machine replacing the spinning page takes a while: the reset waits it out."""
    pool, runner = warm_pool
    replace_page = reset._replace_page

    async def slow_replace(*args: Any) -> reset.KeptPage:
        # Longer than the close timeout's half that the page's leave did not use.
        await asyncio.sleep(CLOSE_TIMEOUT / 2 + 0.3)
        return await replace_page(*args)

    monkeypatch.setattr(reset, "_replace_page", slow_replace)
    find = state_task(site, "/find-state")
    async with pool.warm.lease("T", runner.context_options(find), "spinning") as warm:
        assert warm is not None
        await runner.run_warm(find, warm, Budget(20))
        context = warm.context
        await warm.page.evaluate("setTimeout(() => { for (;;) {} }, 0)")
    await pool.warm.resets_done()
    assert [kept.context for kept in pool.warm.kept] == [context]


async def test_warm_contexts_are_kept_per_tenant_and_trimmed(
    warm_pool: tuple[BrowserPool, BrowserSpecRunner], site: Site
) -> None:
    """Another tenant's task never gets T's context; past the limit the oldest idle one goes."""
    pool, runner = warm_pool
    spec = tasks_pb2.TaskSpec(
        url=site.url("/page"), isolation=WARM, content=tasks_pb2.ContentOptions()
    )
    await runner.run(spec, tenant="T")
    (of_t,) = pool.warm.kept
    await runner.run(spec, tenant="U")
    assert {warm.tenant for warm in pool.warm.kept} == {"T", "U"}
    assert of_t in pool.warm.kept and len(pool.warm.kept) == 2
    await pool.warm.resets_done()
    await runner.run(spec, tenant="V")  # the limit is 2: T's, the oldest, is closed
    assert {warm.tenant for warm in pool.warm.kept} == {"U", "V"}
    assert of_t.page.is_closed()


async def test_under_memory_pressure_idle_warm_contexts_close_and_none_open(
    warm_pool: tuple[BrowserPool, BrowserSpecRunner], site: Site
) -> None:
    """Past the memory threshold the idle contexts go, and tasks get contexts of their own."""
    pool, runner = warm_pool
    spec = tasks_pb2.TaskSpec(
        url=site.url("/page"), isolation=WARM, content=tasks_pb2.ContentOptions()
    )
    await runner.run(spec, tenant="T")
    (kept,) = pool.warm.kept
    await pool.warm.resets_done()
    pool.warm.memory.limit_bytes = 1024 * 1024  # far below what a browser uses

    await pool.warm.trim_for_memory()
    assert pool.warm.kept == [] and kept.page.is_closed()
    async with pool.warm.lease("T", runner.context_options(spec), "pressed") as warm:
        assert warm is None
    assert pool.warm.kept == []

    pool.warm.memory.limit_bytes = 0  # no limit: warm again
    await runner.run(spec, tenant="T")
    assert len(pool.warm.kept) == 1


async def test_a_task_that_needs_its_own_context_never_runs_warm(
    warm_pool: tuple[BrowserPool, BrowserSpecRunner], site: Site
) -> None:
    """A warm request with cookies in its setup falls back to a fresh context, kept nowhere."""
    pool, runner = warm_pool
    spec = tasks_pb2.TaskSpec(
        url=site.url("/echo"),
        isolation=WARM,
        content=tasks_pb2.ContentOptions(format=tasks_pb2.CONTENT_FORMAT_TEXT),
        setup=tasks_pb2.PageSetup(
            cookies=[tasks_pb2.Cookie(name="c", value="1", url=site.base_url)]
        ),
    )
    capture = await runner.run(spec, tenant="T")
    assert "c=1" in capture.result.text
    assert pool.warm.kept == []


async def test_a_warm_context_no_task_uses_is_closed_after_the_idle_time(
    tmp_path_factory: pytest.TempPathFactory, site: Site
) -> None:
    settings = agent_settings(tmp_path_factory.mktemp("h"), browser_idle_seconds=0.5)
    async with running_pool(settings) as pool:
        runner = BrowserSpecRunner(pool, settings)
        spec = tasks_pb2.TaskSpec(
            url=site.url("/page"), isolation=WARM, content=tasks_pb2.ContentOptions()
        )
        await runner.run(spec, tenant="T")
        (warm,) = pool.warm.kept
        await assert_eventually(lambda: pool.warm.kept == [], within=10)
        await assert_eventually(warm.page.is_closed, within=5)


async def test_a_warm_context_whose_reset_fails_or_whose_task_failed_is_never_reused(
    warm_pool: tuple[BrowserPool, BrowserSpecRunner], site: Site
) -> None:
    pool, runner = warm_pool
    spec = tasks_pb2.TaskSpec(
        url=site.url("/page"), isolation=WARM, content=tasks_pb2.ContentOptions()
    )
    async with pool.warm.lease("T", runner.context_options(spec), "crashing") as warm:
        assert warm is not None
        await runner.run_warm(spec, warm, Budget(20))
        crashed = warm.context
        # The renderer dies after the task: the reset cannot go to about:blank. Chromium
        # never answers Page.crash: the page's crash event tells that it is done.
        crashed_page = asyncio.Event()
        warm.page.once("crash", lambda _: crashed_page.set())
        crashing = asyncio.create_task(warm.cdp.send("Page.crash"))
        try:
            async with asyncio.timeout(30):
                await crashed_page.wait()
        finally:
            crashing.cancel()
            with contextlib.suppress(PlaywrightError, asyncio.CancelledError):
                await crashing
    await pool.warm.resets_done()
    assert pool.warm.kept == []

    await runner.run(spec, tenant="T")
    (reused,) = pool.warm.kept
    assert reused.context is not crashed
    failing = tasks_pb2.TaskSpec(
        url=site.url("/page"),
        isolation=WARM,
        steps=[tasks_pb2.Step(check="h1")],  # no check box: fails at once
        content=tasks_pb2.ContentOptions(),
    )
    await pool.warm.resets_done()
    with pytest.raises(TaskFailure):
        await runner.run(failing, tenant="T")
    assert pool.warm.kept == []
    await assert_eventually(reused.page.is_closed, within=5)
