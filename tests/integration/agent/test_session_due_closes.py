"""The agent's own closes (clocks, drain) run side by side: a slow one holds up no other.

One session's close is held (saving its profile waits for the test); another session
due at the same check still closes.
"""

import asyncio
from collections.abc import Callable

import pytest
from nats.js import JetStreamContext

from farm.sessions.v1 import sessions_pb2
from farm_agent.browser.pool import BrowserPool
from farm_agent.places import Places
from farm_agent.sessions.manager import SessionManager
from farm_agent.settings import AgentSettings
from farm_agent.work.uploader import ArtifactOwner
from farm_core.sessions import CloseReason
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import HAVE_CHROMIUM, open_session
from tests.integration.agent.fakes import FakeSavedState, FakeUploader, keeper_of

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]


class HeldSavedState(FakeSavedState):
    """Saving a profile waits until `release` is set."""

    def __init__(self, uploader: FakeUploader) -> None:
        super().__init__(uploader)
        self.saving = asyncio.Event()
        self.release = asyncio.Event()

    async def save_profile(self, owner: ArtifactOwner, name: str, state: bytes) -> None:
        self.saving.set()
        await self.release.wait()
        await super().save_profile(owner, name, state)


async def test_a_held_close_does_not_hold_up_another_due_session(
    shared_pool: BrowserPool,
    make_settings: Callable[..., AgentSettings],
    js: JetStreamContext,
    uploader: FakeUploader,
) -> None:
    saved = HeldSavedState(uploader)
    settings = make_settings(session_spare_browsers=0)
    manager = SessionManager(settings, shared_pool, Places(2), keeper_of(uploader, saved))
    manager.attach(js, "127.0.0.1:1")
    try:
        slow = await open_session(manager, spec=sessions_pb2.SessionSpec(profile="held"))
        other = await open_session(manager)
        for session in (slow, other):
            session.expires_at = session.clock()
        check = asyncio.create_task(manager.close_due())
        await asyncio.wait_for(saved.saving.wait(), 30)
        await assert_eventually(
            lambda: manager.find(other.session_id) is None,
            within=30,
            message="the other due session did not close while one close was held",
        )
        assert manager.find(slow.session_id) is not None
        saved.release.set()
        await check
        await assert_eventually(lambda: manager.find(slow.session_id) is None, within=30)
    finally:
        saved.release.set()
        await manager.drain(0)


async def test_a_session_closed_already_is_not_closed_again(
    shared_pool: BrowserPool,
    make_settings: Callable[..., AgentSettings],
    js: JetStreamContext,
    uploader: FakeUploader,
) -> None:
    places = Places(2)
    settings = make_settings(session_spare_browsers=0)
    manager = SessionManager(settings, shared_pool, places, keeper_of(uploader))
    manager.attach(js, "127.0.0.1:1")
    try:
        session = await open_session(manager)
        first = await manager.close(session, CloseReason.IDLE_TIMEOUT)
        # As a command cut short by that close asks, once it has ended.
        again = await manager.close(session, CloseReason.BROWSER_CRASHED)

        assert again == first
        assert (places.sessions, places.free) == (0, 2)
    finally:
        await manager.drain(0)
