"""An agent started while nats-server does not answer: it keeps trying, then works or gives up.

The test pauses its own nats-server (SIGSTOP, by PID) the moment the agent's first
consumer request reaches it, so the agent's next JetStream set-up requests time out.
"""

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from farm_agent.browser.pool import BrowserPool
from farm_agent.browser.runner import BrowserSpecRunner
from farm_agent.work.intake import WorkIntake
from farm_core.nats_start import NatsStartTimeout
from farm_core.queue import TASK_EVENT_SUBJECTS, ensure_streams
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

CONSUMER_CREATES = "$JS.API.CONSUMER.CREATE.FARM_TASKS.>"
# Short, so that requests to the paused server time out at once and the tests stay fast.
REQUEST_TIMEOUT_SECONDS = 0.3


class Pause:
    """Pauses a nats-server once, when a request of the agent's reaches it; resumes it on demand."""

    def __init__(self, server: NatsServer) -> None:
        self._pid = server.process.pid
        self._armed = True
        self.paused = False

    async def on_request(self, message: Msg) -> None:
        if self._armed:
            self._armed = False
            self.paused = True
            os.kill(self._pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            os.kill(self._pid, signal.SIGCONT)


@pytest.fixture
def pause(fresh_nats_server: NatsServer) -> Iterator[Pause]:
    paused = Pause(fresh_nats_server)
    yield paused
    paused.resume()


@pytest.fixture
async def client(fresh_nats_server: NatsServer, pause: Pause) -> AsyncIterator[Client]:
    """The test's connection: the streams made, the pause armed on the agent's consumers."""
    nc = await nats.connect(fresh_nats_server.url)
    await ensure_streams(nc.jetstream())
    await nc.subscribe(CONSUMER_CREATES, cb=pause.on_request)
    await nc.flush()
    yield nc
    await nc.close()


def intake_of(
    settings_of: SettingsFactory, server: NatsServer, pool: BrowserPool, **overrides: object
) -> WorkIntake:
    settings = settings_of(
        NATS_URL=server.url,
        id="paused-start",
        FARM_NATS_REQUEST_TIMEOUT_SECONDS=REQUEST_TIMEOUT_SECONDS,
        **overrides,
    )
    uploader = FakeUploader()
    return WorkIntake(
        settings, BrowserSpecRunner(pool, settings), uploader, saved=FakeSavedState(uploader)
    )


async def test_agent_started_while_nats_is_paused_comes_up_and_runs_a_task(
    fresh_nats_server: NatsServer,
    client: Client,
    pause: Pause,
    shared_pool: BrowserPool,
    make_settings: SettingsFactory,
    site: Site,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="farm_core.nats_start")
    intake = intake_of(make_settings, fresh_nats_server, shared_pool)
    try:
        starting = asyncio.create_task(intake.start())
        await assert_eventually(
            lambda: "trying again in" in caplog.text,
            within=20,
            message="the agent did not try its set-up again while NATS was paused",
        )
        assert pause.paused
        pause.resume()
        await starting

        events = Events()
        await client.subscribe(TASK_EVENT_SUBJECTS, cb=events.on_message)
        js: JetStreamContext = client.jetstream()
        task_id = await publish(js, content_of(site))
        assert (await events.final(task_id)).status == SUCCEEDED
    finally:
        pause.resume()
        await intake.close()
    assert "JetStream did not bind the consumer agents-any-" in caplog.text


async def test_agent_start_gives_up_after_the_deadline_naming_what_it_waited_for(
    fresh_nats_server: NatsServer,
    client: Client,
    pause: Pause,
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
        pause.resume()
        await intake.close()
    message = str(given_up.value)
    assert message.startswith(
        "agent gave up after 1.5 s (FARM_NATS_START_TIMEOUT_SECONDS) waiting for JetStream to "
        "bind the consumer agents-any-"
    )
    assert "TimeoutError" in message
