"""A session browser that opens after the scheduler stopped waiting is closed again at once.

The open order says how long the scheduler waits (answer_within_ms, measured by the
agent from the order's arrival); the agent's clock here is one the test moves. A
close for a session still opening (or not yet ordered) withdraws its opening.
"""

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable

import psutil
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import JetStreamContext

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.places import Places
from farm_agent.sessions.manager import SessionManager, SessionRefused
from farm_agent.settings import AgentSettings
from farm_core.sessions import CloseReason, Refusal
from tests.clock import MovedClock
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import HAVE_CHROMIUM
from tests.integration.agent.fakes import FakeSavedState, FakeUploader, keeper_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]

WITHIN_MS = 30_000


@contextlib.asynccontextmanager
async def one_place_manager(
    pool: BrowserPool,
    make_settings: Callable[..., AgentSettings],
    js: JetStreamContext,
    uploader: FakeUploader,
    clock: MovedClock,
    saved: FakeSavedState | None = None,
) -> AsyncIterator[tuple[SessionManager, Places]]:
    """A manager with one place, which a task holds; its sessions drained after."""
    places = Places(1)
    assert places.try_take_for_task()
    settings = make_settings(session_spare_browsers=0, session_place_wait_seconds=60)
    manager = SessionManager(settings, pool, places, keeper_of(uploader, saved), clock=clock)
    manager.attach(js, "127.0.0.1:1")
    try:
        yield manager, places
    finally:
        await manager.drain(0)


def open_order(within_ms: int, profile: str = "") -> queue_pb2.OpenSessionOrder:
    expire_time = Timestamp()
    expire_time.FromSeconds(int(time.time()) + 600)
    return queue_pb2.OpenSessionOrder(
        session_id=f"ses_{secrets.token_hex(8)}",
        tenant="acme",
        spec=sessions_pb2.SessionSpec(
            idle_timeout_seconds=600, max_lifetime_seconds=600, profile=profile
        ),
        expire_time=expire_time,
        answer_within_ms=within_ms,
    )


def browsers_of(session_id: str) -> list[psutil.Process]:
    """Processes under this one whose command line names the session (its browser's folder)."""
    found = []
    for child in psutil.Process(os.getpid()).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any(session_id in argument for argument in child.cmdline()):
                found.append(child)
    return found


async def assert_nothing_left(manager: SessionManager, places: Places, session_id: str) -> None:
    assert manager.session_ids == []
    assert places.free == 1
    await assert_eventually(
        lambda: browsers_of(session_id) == [], within=30, message="its browser still runs"
    )


async def test_a_browser_open_past_the_schedulers_wait_is_closed_and_refused(
    shared_pool: BrowserPool,
    make_settings: Callable[..., AgentSettings],
    js: JetStreamContext,
    uploader: FakeUploader,
) -> None:
    clock = MovedClock(1000.0)
    async with one_place_manager(shared_pool, make_settings, js, uploader, clock) as (
        manager,
        places,
    ):
        order = open_order(WITHIN_MS)
        opening = asyncio.create_task(manager.open(order))
        await assert_eventually(lambda: places.sessions_waiting == 1)
        # By the agent's clock the scheduler has stopped waiting; then a place comes free.
        clock.now += WITHIN_MS / 1000 + 1
        await places.give_back(session=False)

        with pytest.raises(SessionRefused) as refused:
            await opening
        assert refused.value.code is Refusal.OPEN_TOO_LATE
        await assert_nothing_left(manager, places, order.session_id)


async def test_a_browser_open_within_the_schedulers_wait_stays_open(
    shared_pool: BrowserPool,
    make_settings: Callable[..., AgentSettings],
    js: JetStreamContext,
    uploader: FakeUploader,
) -> None:
    clock = MovedClock(1000.0)
    async with one_place_manager(shared_pool, make_settings, js, uploader, clock) as (
        manager,
        places,
    ):
        # The heartbeat is told of every change, with the sessions listed then.
        told: list[list[str]] = []
        places.on_change = lambda: told.append(manager.session_ids)

        async def beat() -> None:
            told.append(manager.session_ids)

        manager.on_change = beat
        order = open_order(WITHIN_MS)
        opening = asyncio.create_task(manager.open(order))
        await assert_eventually(lambda: places.sessions_waiting == 1)
        clock.now += WITHIN_MS / 1000 - 1
        await places.give_back(session=False)

        await opening
        assert manager.session_ids == [order.session_id]
        # Once for the task's place, once for the session (its place with it), listed.
        assert told == [[], [order.session_id]]
        session = manager.find(order.session_id)
        assert session is not None
        await manager.close(session, CloseReason.CLOSED_BY_USER)
        assert told == [[], [order.session_id], []]


async def test_a_session_closed_as_abandoned_leaves_nothing_stored(
    shared_pool: BrowserPool,
    make_settings: Callable[..., AgentSettings],
    js: JetStreamContext,
    uploader: FakeUploader,
) -> None:
    # The scheduler no longer wants the browser it opened (it gave up on its opening, and
    # placed the session on another agent): its profile is not saved back, and nothing of
    # it is stored.
    saved = FakeSavedState(uploader)
    clock = MovedClock(1000.0)
    async with one_place_manager(shared_pool, make_settings, js, uploader, clock, saved) as (
        manager,
        places,
    ):
        order = open_order(WITHIN_MS, profile="shopper")
        opening = asyncio.create_task(manager.open(order))
        await places.give_back(session=False)
        await opening
        session = manager.find(order.session_id)
        assert session is not None

        closed = await manager.close(session, CloseReason.OPEN_ABANDONED)

        assert closed.reason == "OPEN_ABANDONED"
        assert (saved.profiles, uploader.uploads) == ({}, [])
        await assert_nothing_left(manager, places, order.session_id)


async def test_an_opening_withdrawn_while_it_waits_leaves_no_browser(
    shared_pool: BrowserPool,
    make_settings: Callable[..., AgentSettings],
    js: JetStreamContext,
    uploader: FakeUploader,
) -> None:
    clock = MovedClock(1000.0)
    async with one_place_manager(shared_pool, make_settings, js, uploader, clock) as (
        manager,
        places,
    ):
        order = open_order(WITHIN_MS)
        opening = asyncio.create_task(manager.open(order))
        await assert_eventually(lambda: places.sessions_waiting == 1)
        manager.withdraw(order.session_id, order.tenant)
        await places.give_back(session=False)

        with pytest.raises(SessionRefused) as refused:
            await opening
        assert refused.value.code is Refusal.OPEN_TOO_LATE
        await assert_nothing_left(manager, places, order.session_id)


async def test_an_open_order_after_its_withdrawal_is_refused(
    shared_pool: BrowserPool,
    make_settings: Callable[..., AgentSettings],
    js: JetStreamContext,
    uploader: FakeUploader,
) -> None:
    clock = MovedClock(1000.0)
    async with one_place_manager(shared_pool, make_settings, js, uploader, clock) as (
        manager,
        _,
    ):
        # The place stays taken: the order is refused before it would wait for one.
        order = open_order(1000)
        manager.withdraw(order.session_id, order.tenant)

        with pytest.raises(SessionRefused) as refused:
            await manager.open(order)
        assert refused.value.code is Refusal.OPEN_TOO_LATE
        assert manager.session_ids == []
