"""An SDK session open that its caller cancels leaves no session open on the farm.

Against the whole farm, over gRPC and over HTTP/JSON, through a link that holds the
farm's answers back, so that the farm has opened the session before the caller gives up
and its answer arrives only after.
"""

import asyncio
import os
import signal
import threading
import uuid
from typing import Any

import httpx
import pytest

import browserfarm
from browserfarm.transport import TransportName
from farm_cli.launcher.farm import LocalFarm
from tests.helpers import assert_eventually
from tests.tcp_link import CuttableLink

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]


async def _labelled(farm: LocalFarm, label: str) -> list[dict[str, Any]]:
    """The tenant's sessions labelled `label`, as ListSessions shows them."""
    headers = {"authorization": f"Bearer {farm.admin_key}"}
    async with httpx.AsyncClient(base_url=farm.envoy_url, headers=headers, timeout=30) as http:
        response = await http.get("/v1/sessions", params={"pageSize": 1000})
    assert response.status_code == 200, response.text
    sessions = response.json().get("sessions", [])
    return [each for each in sessions if each.get("spec", {}).get("labels", {}).get("t") == label]


@pytest.mark.parametrize("transport", ["grpc", "http"])
async def test_an_open_cancelled_after_the_farm_opened_it_closes_the_session(
    farm: LocalFarm, transport: TransportName
) -> None:
    label = uuid.uuid4().hex
    link = CuttableLink(int(farm.envoy_url.rsplit(":", 1)[1]))
    await link.mend()
    try:
        url = f"http://127.0.0.1:{link.port}"
        async with browserfarm.AsyncClient(url, farm.admin_key, transport=transport) as client:
            await client.list_page()  # the connection is made before the answers are held
            link.hold_answers()
            opening = asyncio.ensure_future(client.session(labels={"t": label}).open())

            async def opened_on_the_farm() -> bool:
                return bool(await _labelled(farm, label))

            await assert_eventually(opened_on_the_farm, within=60, message="never opened")
            opening.cancel()
            with pytest.raises(asyncio.CancelledError):
                await opening
            link.release_answers()

            async def closed_on_the_farm() -> bool:
                found = await _labelled(farm, label)
                return [each["state"] for each in found] == ["SESSION_STATE_CLOSED"]

            await assert_eventually(
                closed_on_the_farm, within=60, message="the session was left open"
            )
    finally:
        await link.cut()


def test_a_blocking_open_interrupted_after_the_farm_opened_it_closes_the_session(
    farm: LocalFarm, thread_loop: asyncio.AbstractEventLoop
) -> None:
    label = uuid.uuid4().hex
    link = CuttableLink(int(farm.envoy_url.rsplit(":", 1)[1]))
    asyncio.run_coroutine_threadsafe(link.mend(), thread_loop).result(timeout=10)

    def interrupt_once_opened() -> None:
        opened = asyncio.run_coroutine_threadsafe(
            assert_eventually(lambda: _labelled(farm, label), within=60), thread_loop
        )
        opened.result(timeout=90)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, while the caller waits for the open

    client = browserfarm.Client(f"http://127.0.0.1:{link.port}", farm.admin_key)
    # Python's own Ctrl-C handler: a run started in the background by a shell (nohup
    # make test &) inherits SIGINT ignored, and the open would wait out the test.
    sigint_was = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        client.list_page()  # the connection is made before the answers are held
        thread_loop.call_soon_threadsafe(link.hold_answers)
        interrupter = threading.Thread(target=interrupt_once_opened)
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            client.session(labels={"t": label}).open()
        interrupter.join(timeout=10)
        thread_loop.call_soon_threadsafe(link.release_answers)
    finally:
        signal.signal(signal.SIGINT, sigint_was)
        client.close()  # waits for the close of the session the farm opened
        asyncio.run_coroutine_threadsafe(link.cut(), thread_loop).result(timeout=10)
    found = asyncio.run_coroutine_threadsafe(_labelled(farm, label), thread_loop).result(timeout=30)
    assert [each["state"] for each in found] == ["SESSION_STATE_CLOSED"]
