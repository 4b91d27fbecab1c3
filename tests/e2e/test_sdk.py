"""The Python SDK (`browserfarm`) against the whole farm, through Envoy over gRPC.

The tests marked `over_both_transports` run over HTTP/JSON too (transport="http").
"""

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from playwright.async_api import Playwright

import browserfarm
from browserfarm.transport import TransportName
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, new_tenant, png_size, unique_label
from tests.helpers import eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

# No agent serves this region: a task there stays queued until cancelled.
NOWHERE = "sdk-nowhere"


over_both_transports = pytest.mark.parametrize("transport", ["grpc", "http"], scope="module")


@pytest.fixture(scope="module")
def transport() -> str:
    """The clients' transport: gRPC, unless a test runs over_both_transports."""
    return "grpc"


@pytest.fixture(scope="module")
def farm_client(farm: LocalFarm, transport: TransportName) -> Iterator[browserfarm.Client]:
    """A blocking client with the admin key."""
    with browserfarm.Client(farm.envoy_url, farm.admin_key, transport=transport) as client:
        yield client


@pytest.fixture
async def async_client(
    farm: LocalFarm, transport: TransportName
) -> AsyncIterator[browserfarm.AsyncClient]:
    """An asyncio client with the admin key."""
    async with browserfarm.AsyncClient(
        farm.envoy_url, farm.admin_key, transport=transport
    ) as client:
        yield client


@over_both_transports
def test_the_shortcuts_return_the_pages_bytes_text_and_values(
    farm_client: browserfarm.Client, site: Site
) -> None:
    page = site.url("/page")
    png = farm_client.screenshot(page, viewport={"width": 640, "height": 480}, cache_ttl_seconds=0)
    assert png_size(png) == (640, 480)
    assert farm_client.pdf(page).startswith(b"%PDF-")
    assert "Hello, farm" in farm_client.content(page, format="text")
    assert farm_client.extract(page, {"title": "h1", "fruit": "li[]"}) == {
        "title": "Hello, farm",
        "fruit": ["apple", "pear", "plum"],
    }


def test_a_client_without_url_or_key_calls_the_farm_of_farm_home_with_its_admin_key(
    farm: LocalFarm, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As after `make run`: nothing exported but where the farm keeps its state.
    for name in ("FARM_URL", "FARM_API_KEY", "FARM_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FARM_HOME", str(farm.home))
    with browserfarm.Client() as local:
        assert (local.options.url, local.options.api_key) == (farm.envoy_url, farm.admin_key)
        task = local.run({"url": site.url("/page"), "content": {"format": "text"}})
    assert task.status == browserfarm.TaskStatus.SUCCEEDED and task.result is not None
    assert "Hello, farm" in task.result.text


@over_both_transports
async def test_submit_then_wait_gives_the_ended_task_with_its_result(
    async_client: browserfarm.AsyncClient, site: Site
) -> None:
    queued = await async_client.submit(
        {"url": site.url("/page"), "content": {}, "cacheTtlSeconds": 0}
    )
    assert queued.status in (browserfarm.TaskStatus.QUEUED, browserfarm.TaskStatus.RUNNING)
    ended = await async_client.wait(queued)
    assert ended.id == queued.id
    assert ended.status is browserfarm.TaskStatus.SUCCEEDED
    assert ended.result is not None and "Hello, farm" in ended.result.text


@over_both_transports
def test_a_batch_queues_its_good_specs_and_names_the_bad_items_field(
    farm_client: browserfarm.Client, site: Site
) -> None:
    labels = unique_label()
    good = {"url": site.url("/page"), "content": {}, "labels": labels, "cacheTtlSeconds": 0}

    items = farm_client.create_tasks([good, {"url": "gopher://example.com/", "content": {}}, good])

    assert [item.ok for item in items] == [True, False, True]
    error = items[1].error
    assert error is not None
    assert (error.field, error.code) == ("requests[1].url", "INVALID_ARGUMENT")
    queued = [item.task for item in items if item.task is not None]
    assert len({task.id for task in queued}) == 2
    ended = [farm_client.wait(task) for task in queued]
    assert [task.status for task in ended] == [browserfarm.TaskStatus.SUCCEEDED] * 2


@over_both_transports
async def test_list_tasks_follows_the_pages_of_a_label(
    async_client: browserfarm.AsyncClient, site: Site
) -> None:
    labels = unique_label()
    spec = {"url": site.url("/page"), "content": {}, "labels": labels, "region": NOWHERE}
    items = await async_client.create_tasks([spec] * 5)
    made = {item.task.id for item in items if item.task is not None}
    assert len(made) == 5
    try:
        first = await async_client.list_page(labels=labels, page_size=2)
        assert len(first.tasks) == 2 and first.next_page_token

        listed = [task.id async for task in async_client.list_tasks(labels=labels, page_size=2)]

        assert sorted(listed) == sorted(made)
        queued = async_client.list_tasks(labels=labels, status="queued", page_size=2)
        assert {task.id async for task in queued} == made
        assert [
            task async for task in async_client.list_tasks(labels=labels, status="failed")
        ] == []
    finally:
        for task_id in made:
            await async_client.cancel(task_id)


async def test_map_yields_each_task_as_it_ends(
    async_client: browserfarm.AsyncClient, site: Site
) -> None:
    gate = f"sdk-map-{unique_label()['test']}"
    held = {"url": site.url(f"/gate/{gate}"), "content": {}, "cacheTtlSeconds": 0}
    quick = {"url": site.url("/page"), "content": {}, "cacheTtlSeconds": 0}
    ended = []
    async for task in async_client.map([held, quick], concurrency=2):
        ended.append(task)
        # The held task ends only once the quick one has been yielded.
        site.release(gate)
    assert [task.result.final_url if task.result else "" for task in ended] == [
        quick["url"],
        held["url"],
    ]
    assert all(task.status is browserfarm.TaskStatus.SUCCEEDED for task in ended)


@over_both_transports
def test_a_failed_task_raises_task_failed_with_its_code(
    farm_client: browserfarm.Client, site: Site
) -> None:
    spec = {
        "url": site.url("/status/404"),
        "content": {},
        "failOnHttpError": True,
        "maxAttempts": 1,
        "cacheTtlSeconds": 0,
    }
    with pytest.raises(browserfarm.TaskFailed) as raised:
        farm_client.run(spec)
    assert raised.value.error_code == "HTTP_ERROR"
    assert raised.value.task.status is browserfarm.TaskStatus.FAILED
    unchecked = farm_client.run(spec, check=False)
    assert unchecked.error is not None and unchecked.error.code == "HTTP_ERROR"


@over_both_transports
def test_each_refusal_is_its_own_exception(
    farm: LocalFarm, farm_client: browserfarm.Client, make_key: KeyFactory, transport: TransportName
) -> None:
    with pytest.raises(browserfarm.InvalidArgument, match="url"):
        farm_client.submit({"url": "ftp://example.com", "content": {}})
    with pytest.raises(browserfarm.NotFound):
        farm_client.get("tsk_0000000000000000")
    with (
        browserfarm.Client(farm.envoy_url, "bf_not-a-key", transport=transport) as stranger,
        pytest.raises(browserfarm.Unauthenticated),
    ):
        stranger.get("tsk_0000000000000000")
    reader = make_key("tasks.read").secret
    with (
        browserfarm.Client(farm.envoy_url, reader, transport=transport) as client,
        pytest.raises(browserfarm.PermissionDenied),
    ):
        client.submit({"url": "https://example.com", "content": {}})


@over_both_transports
def test_a_rate_limit_is_raised_with_its_retry_after_or_waited_out(
    farm: LocalFarm, admin: Client, make_key: KeyFactory, transport: TransportName
) -> None:
    key = make_key("tasks.read")
    limits = {"rateLimitPerSecond": 1, "rateLimitBurst": 1}
    assert admin.http.patch(f"/v1/apiKeys/{key.api_key.id}", json=limits).status_code == 200
    with browserfarm.Client(
        farm.envoy_url, key.secret, max_attempts=1, transport=transport
    ) as impatient:
        # A task of another tenant, or none: either way the call got past the edge.
        with pytest.raises(browserfarm.NotFound):
            impatient.get("tsk_0000000000000000")
        with pytest.raises(browserfarm.RateLimited) as raised:
            impatient.get("tsk_0000000000000000")
    assert raised.value.retry_after == 1
    with (
        browserfarm.Client(farm.envoy_url, key.secret, transport=transport) as patient,
        pytest.raises(browserfarm.NotFound),
    ):
        patient.get("tsk_0000000000000000")


@over_both_transports
def test_the_webhook_secret_is_read_and_rotated(
    farm: LocalFarm, make_key: KeyFactory, transport: TransportName
) -> None:
    key = make_key("tasks.write", "tasks.read", tenant=new_tenant("sdk-webhook"))
    with browserfarm.Client(farm.envoy_url, key.secret, transport=transport) as client:
        current = client.webhook_secret()
        rotated = client.webhook_secret(rotate=True)
        again = client.webhook_secret()
    assert current.secret.startswith("whsec_") and current.create_time is not None
    assert rotated.secret != current.secret and rotated.previous_valid_until is not None
    assert again.secret == rotated.secret


def test_a_tenant_over_its_quota_gets_quota_exceeded(
    farm: LocalFarm, admin: Client, make_key: KeyFactory
) -> None:
    tenant = new_tenant("sdk-quota")
    key = make_key("tasks.write", "tasks.read", tenant=tenant)
    response = admin.http.patch(f"/v1/tenants/{tenant}/limits", json={"maxQueuedTasks": 1})
    assert response.status_code == 200, response.text
    spec = {"url": "https://example.com", "content": {}, "region": NOWHERE}
    with browserfarm.Client(farm.envoy_url, key.secret) as client:
        waiting = client.submit(spec)
        try:
            with pytest.raises(browserfarm.QuotaExceeded, match="maxQueuedTasks"):
                client.submit(spec)
        finally:
            assert client.cancel(waiting).status is browserfarm.TaskStatus.CANCELLED


@over_both_transports
async def test_a_session_keeps_its_page_and_lets_playwright_attach(
    async_client: browserfarm.AsyncClient, site: Site, playwright: Playwright
) -> None:
    async with async_client.session(viewport={"width": 800, "height": 600}) as session:
        await session.goto(site.url("/form"))
        await session.fill("#q", "typed by the sdk")
        await session.click("#go")
        assert await session.extract({"out": "#out"}) == {"out": "You asked: typed by the sdk"}
        browser = await session.connect_playwright(playwright)
        try:
            page = browser.contexts[0].pages[0]
            assert await page.title() == "Form"
            assert await page.input_value("#q") == "typed by the sdk"
        finally:
            await browser.close()
        assert png_size(await session.screenshot()) == (800, 600)
        assert "Hello, farm" in await session.content(site.url("/page"), format="text")
        assert (await session.back()).final_url == site.url("/form")
        assert (await session.forward()).final_url == site.url("/page")
    assert not session.info.active


@over_both_transports
async def test_a_sessions_page_prints_as_a_pdf_with_the_tasks_pdf_options(
    async_client: browserfarm.AsyncClient, site: Site
) -> None:
    async with async_client.session() as session:
        await session.goto(site.url("/form"))
        a4_across = await session.pdf(landscape=True)
        letter = await session.pdf(site.url("/page"), paper_format="Letter")
        # pdf(url) went there first, and the page stays for the next command.
        assert await session.extract({"title": "h1"}) == {"title": "Hello, farm"}
    assert a4_across.startswith(b"%PDF-")
    assert letter.startswith(b"%PDF-")
    # Points: A4 (the default) across, 297 x 210 mm; US Letter upright, 8.5 x 11 in.
    assert page_size_points(a4_across) == (842, 595)
    assert page_size_points(letter) == (612, 792)


def test_a_blocking_session_prints_its_page_as_a_pdf(
    farm_client: browserfarm.Client, site: Site
) -> None:
    with farm_client.session() as session:
        pdf = session.pdf(site.url("/page"), paper_format="Letter", landscape=True)
    assert page_size_points(pdf) == (792, 612)


def page_size_points(pdf: bytes) -> tuple[int, int]:
    """The width and height of the PDF's first page, in whole points."""
    found = re.search(rb"/MediaBox \[0 0 ([0-9.]+) ([0-9.]+)\]", pdf)
    assert found, "the PDF names no page size"
    return int(float(found[1])), int(float(found[2]))


@over_both_transports
async def test_a_sessions_tabs_are_listed_opened_selected_and_closed(
    async_client: browserfarm.AsyncClient, site: Site
) -> None:
    async with async_client.session() as session:
        await session.goto(site.url("/form"))
        opened = await session.new_tab(site.url("/page"))
        selected = await session.select_tab(0)
        read = await session.extract({"out": "#out"})
        with pytest.raises(browserfarm.FarmError, match=r"^NO_SUCH_PAGE: tabs\.index") as missing:
            await session.close_tab(5)
        closed = await session.close_tab(1)
        listed = await session.tabs()
    assert opened == [
        browserfarm.Tab(0, "Form", site.url("/form"), current=False),
        browserfarm.Tab(1, "Test page", site.url("/page"), current=True),
    ]
    assert [tab.current for tab in selected] == [True, False]
    assert read == {"out": "nothing yet"}
    assert type(missing.value) is browserfarm.FailedPrecondition
    assert closed == listed == [browserfarm.Tab(0, "Form", site.url("/form"), current=True)]


def test_a_blocking_sessions_tabs_are_the_async_ones(
    farm_client: browserfarm.Client, site: Site
) -> None:
    with farm_client.session() as session:
        session.goto(site.url("/form"))
        assert [tab.url for tab in session.new_tab()] == [site.url("/form"), "about:blank"]
        assert [tab.current for tab in session.select_tab(0)] == [True, False]
        assert session.close_tab(1) == session.tabs()
        assert session.tabs() == [browserfarm.Tab(0, "Form", site.url("/form"), current=True)]


def test_the_callers_trace_is_passed_on(
    farm_client: browserfarm.Client,
    admin: Client,
    site: Site,
    recorded_spans: InMemorySpanExporter,
) -> None:
    with trace.get_tracer("test").start_as_current_span("caller") as span:
        task = farm_client.submit({"url": site.url("/page"), "content": {}})
    trace_id = trace.format_trace_id(span.get_span_context().trace_id)

    def audited() -> list[Any]:
        response = admin.http.get("/v1/auditRecords", params={"pageSize": 100})
        assert response.status_code == 200, response.text
        return [r for r in response.json()["auditRecords"] if r["traceId"] == trace_id]

    # The farm writes CreateTask's audit record under the trace the call carried.
    records = eventually(audited, within=15, interval=0.1, message=f"no record of {trace_id}")
    assert records[0]["target"] == task.id
