"""An agent started while nats-server does not answer: it keeps trying, then works or gives up.

The agent reaches its nats-server through a link that holds back every answer from the
moment the agent asks for its first task consumer, before the server has that request:
the consumer's set-up and every request after it time out, however quickly the server
would have answered.
"""

import asyncio
import logging
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client
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
from tests.tcp_link import CuttableLink

pytestmark = pytest.mark.integration

CONSUMER_CREATE = b"$JS.API.CONSUMER.CREATE.FARM_TASKS."
# Short, so that requests without an answer time out at once and the tests stay fast.
REQUEST_TIMEOUT_SECONDS = 0.3


@pytest.fixture
async def link(fresh_nats_server: NatsServer) -> AsyncIterator[CuttableLink]:
    """The agent's way to the server, its answers held from the first consumer request on."""
    link = CuttableLink(int(fresh_nats_server.url.rsplit(":", 1)[1]))
    await link.mend()
    link.hold_answers_from(CONSUMER_CREATE)
    yield link
    link.release_answers()
    await link.cut()


@pytest.fixture
async def client(fresh_nats_server: NatsServer) -> AsyncIterator[Client]:
    """The test's own connection, straight to the server, the streams made."""
    nc = await nats.connect(fresh_nats_server.url)
    await ensure_streams(nc.jetstream())
    yield nc
    await nc.close()


def intake_of(
    settings_of: SettingsFactory, link: CuttableLink, pool: BrowserPool, **overrides: object
) -> WorkIntake:
    settings = settings_of(
        NATS_URL=link.url,
        id="paused-start",
        FARM_NATS_REQUEST_TIMEOUT_SECONDS=REQUEST_TIMEOUT_SECONDS,
        **overrides,
    )
    uploader = FakeUploader()
    return WorkIntake(
        settings, BrowserSpecRunner(pool, settings), uploader, saved=FakeSavedState(uploader)
    )


async def test_agent_started_while_nats_does_not_answer_comes_up_and_runs_a_task(
    link: CuttableLink,
    client: Client,
    shared_pool: BrowserPool,
    make_settings: SettingsFactory,
    site: Site,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="farm_core.nats_start")
    intake = intake_of(make_settings, link, shared_pool)
    try:
        starting = asyncio.create_task(intake.start())
        await assert_eventually(
            lambda: "trying again in" in caplog.text,
            within=20,
            message="the agent did not try its set-up again while NATS did not answer",
        )
        await assert_eventually(
            lambda: link.times_sent(CONSUMER_CREATE) >= 2,
            within=20,
            message="the agent did not ask for its consumer again",
        )
        link.release_answers()
        await starting

        events = Events()
        await client.subscribe(TASK_EVENT_SUBJECTS, cb=events.on_message)
        js: JetStreamContext = client.jetstream()
        task_id = await publish(js, content_of(site))
        assert (await events.final(task_id)).status == SUCCEEDED
    finally:
        link.release_answers()
        await intake.close()
    assert "JetStream did not bind the consumer agents-any-" in caplog.text


async def test_agent_start_gives_up_after_the_deadline_naming_what_it_waited_for(
    link: CuttableLink,
    client: Client,
    shared_pool: BrowserPool,
    make_settings: SettingsFactory,
) -> None:
    intake = intake_of(make_settings, link, shared_pool, FARM_NATS_START_TIMEOUT_SECONDS=1.5)
    try:
        with pytest.raises(NatsStartTimeout) as given_up:
            await intake.start()
    finally:
        link.release_answers()
        await intake.close()
    message = str(given_up.value)
    assert message.startswith(
        "agent gave up after 1.5 s (FARM_NATS_START_TIMEOUT_SECONDS) waiting for JetStream to "
        "bind the consumer agents-any-"
    )
    assert "TimeoutError" in message
