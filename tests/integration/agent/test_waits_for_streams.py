"""An agent started before the scheduler made the task streams waits for them, never makes them.

`farm up` starts the agents beside the scheduler: an agent's start on NATS looks the
streams up until they are there (within FARM_NATS_START_TIMEOUT_SECONDS), as made by
the scheduler with the farm's limits, and then takes tasks.
"""

import asyncio
import logging
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.work.intake import WorkIntake
from farm_core.nats_start import NatsStartTimeout
from farm_core.queue import EVENT_STREAM, TASK_EVENT_SUBJECTS, TASK_STREAM, ensure_streams
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import (
    SUCCEEDED,
    Events,
    SettingsFactory,
    content_of,
    publish,
)
from tests.integration.agent.fakes import FakeSavedState, FakeUploader
from tests.pages import Site

pytestmark = pytest.mark.integration

WAITING = "JetStream did not find the streams FARM_TASKS and FARM_EVENTS"


@pytest.fixture
async def client(fresh_nats_server: NatsServer) -> AsyncIterator[Client]:
    """The test's own connection to a nats-server without any stream."""
    nc = await nats.connect(fresh_nats_server.url)
    yield nc
    await nc.close()


def intake_of(
    settings_of: SettingsFactory, server: NatsServer, pool: BrowserPool, **overrides: object
) -> WorkIntake:
    settings = settings_of(NATS_URL=server.url, id="early-agent", **overrides)
    uploader = FakeUploader()
    return WorkIntake(
        settings, BrowserSpecRunner(pool, settings), uploader, saved=FakeSavedState(uploader)
    )


async def has_stream(js: JetStreamContext, name: str) -> bool:
    try:
        await js.stream_info(name)
    except NotFoundError:
        return False
    return True


async def test_agent_started_before_the_streams_waits_for_them_then_runs_a_task(
    fresh_nats_server: NatsServer,
    client: Client,
    shared_pool: BrowserPool,
    make_settings: SettingsFactory,
    site: Site,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="farm_core.nats_start")
    js: JetStreamContext = client.jetstream()
    intake = intake_of(make_settings, fresh_nats_server, shared_pool)
    try:
        starting = asyncio.create_task(intake.start())
        await assert_eventually(
            lambda: WAITING in caplog.text,
            within=20,
            message="the agent did not say it waits for the streams",
        )
        assert not starting.done()
        # The agent looked and waits: it made neither stream (nor would it with its own limits).
        assert not await has_stream(js, TASK_STREAM)
        assert not await has_stream(js, EVENT_STREAM)

        await ensure_streams(js)
        await asyncio.wait_for(starting, timeout=20)

        events = Events()
        await client.subscribe(TASK_EVENT_SUBJECTS, cb=events.on_message)
        task_id = await publish(js, content_of(site))
        assert (await events.final(task_id)).status == SUCCEEDED
    finally:
        await intake.close()


async def test_agent_gives_up_on_streams_never_made_naming_them(
    fresh_nats_server: NatsServer,
    client: Client,
    shared_pool: BrowserPool,
    make_settings: SettingsFactory,
) -> None:
    intake = intake_of(
        make_settings, fresh_nats_server, shared_pool, FARM_NATS_START_TIMEOUT_SECONDS=1.5
    )
    try:
        with pytest.raises(NatsStartTimeout) as given_up:
            await intake.start()
    finally:
        await intake.close()
    assert str(given_up.value).startswith(
        "agent gave up after 1.5 s (FARM_NATS_START_TIMEOUT_SECONDS) waiting for JetStream to "
        "find the streams FARM_TASKS and FARM_EVENTS (the scheduler makes them): StreamNotMade"
    )
    assert not await has_stream(client.jetstream(), TASK_STREAM)
