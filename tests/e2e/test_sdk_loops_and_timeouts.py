"""The SDK where a new user trips: run()/wait() timing out, and AsyncClient's event loops.

Both against the whole farm, over gRPC and over HTTP/JSON.
"""

import asyncio

import pytest

import browserfarm
from browserfarm.transport import TransportName
from farm_cli.launcher.farm import LocalFarm
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

# No agent serves this region: a task there stays queued until cancelled.
NOWHERE = "sdk-nowhere"

over_both_transports = pytest.mark.parametrize("transport", ["grpc", "http"])


@over_both_transports
def test_a_run_or_wait_that_times_out_names_its_task_which_is_still_there(
    farm: LocalFarm, site: Site, transport: TransportName
) -> None:
    spec = {"url": site.url("/page"), "content": {}, "region": NOWHERE}
    with browserfarm.Client(farm.envoy_url, farm.admin_key, transport=transport) as client:
        queued = client.submit(spec)
        made = [queued.id]
        try:
            with pytest.raises(browserfarm.Timeout) as waited:
                client.wait(queued, timeout=1)
            with pytest.raises(browserfarm.Timeout) as ran:
                client.run(spec, timeout=3)
            run_id = ran.value.task_id
            assert run_id is not None
            made.append(run_id)
            assert waited.value.task_id == queued.id
            assert f"task {queued.id} did not end within 1 s" in waited.value.message
            assert f"task {run_id} did not end within 3 s" in ran.value.message
            assert client.get(run_id).status is browserfarm.TaskStatus.QUEUED
        finally:
            for task_id in made:
                client.cancel(task_id)


@over_both_transports
def test_an_async_client_made_outside_any_loop_serves_the_loop_it_is_used_on(
    farm: LocalFarm, site: Site, transport: TransportName
) -> None:
    # As a module-level client in a script.
    client = browserfarm.AsyncClient(farm.envoy_url, farm.admin_key, transport=transport)

    async def text_then_close() -> str:
        try:
            return await client.content(site.url("/page"), format="text")
        finally:
            await client.close()

    assert "Hello, farm" in asyncio.run(text_then_close())
    with pytest.raises(RuntimeError, match="the client is closed"):
        asyncio.run(client.get("tsk_0000000000000000"))


def test_a_grpc_async_client_serves_one_asyncio_run_after_another(
    farm: LocalFarm, site: Site
) -> None:
    # A test suite with a loop per test; the first loop's channel is left behind with it.
    client = browserfarm.AsyncClient(farm.envoy_url, farm.admin_key)

    async def text() -> str:
        return await client.content(site.url("/page"), format="text")

    assert "Hello, farm" in asyncio.run(text())
    assert "Hello, farm" in asyncio.run(text())
    asyncio.run(client.close())


@over_both_transports
def test_an_async_client_in_use_on_a_running_loop_refuses_anthread_loop_saying_so(
    farm: LocalFarm, site: Site, transport: TransportName, thread_loop: asyncio.AbstractEventLoop
) -> None:
    client = browserfarm.AsyncClient(farm.envoy_url, farm.admin_key, transport=transport)
    first = asyncio.run_coroutine_threadsafe(client.content(site.url("/page")), thread_loop)
    assert "Hello, farm" in first.result(timeout=60)
    with pytest.raises(RuntimeError, match="in use on another event loop, which is still running"):
        asyncio.run(client.content(site.url("/page")))
    asyncio.run_coroutine_threadsafe(client.close(), thread_loop).result(timeout=10)
