"""A start's JetStream set-up: tried again while NATS does not answer, refused at once otherwise."""

import asyncio
import logging
from typing import cast

import nats.errors
import pytest
from nats.aio.client import Client
from nats.js.errors import BadRequestError, ServiceUnavailableError

from farm_core.nats_access import NatsAccess
from farm_core.nats_start import NatsStart, NatsStartRefused, NatsStartTimeout
from farm_core.queue import StreamNotMade


class Connection:
    """What NatsStart reads of a connection: the last error the server sent it."""

    last_error: Exception | None = None


def connection() -> Client:
    return cast(Client, Connection())


async def test_set_up_is_tried_again_while_jetstream_does_not_answer() -> None:
    tries: list[int] = []

    async def setup() -> str:
        tries.append(1)
        if len(tries) == 1:
            raise nats.errors.TimeoutError
        if len(tries) == 2:
            raise ServiceUnavailableError
        return "set up"

    assert await NatsStart("agent", 30).set_up(connection(), "find a stream", setup) == "set up"
    assert len(tries) == 3


async def test_set_up_gives_up_at_the_deadline_naming_what_it_waited_for() -> None:
    async def setup() -> None:
        raise nats.errors.TimeoutError

    with pytest.raises(NatsStartTimeout) as given_up:
        await NatsStart("agent", 0.3).set_up(connection(), "find the stream FARM_TASKS", setup)
    assert str(given_up.value) == (
        "agent gave up after 0.3 s (FARM_NATS_START_TIMEOUT_SECONDS) waiting for JetStream "
        "to find the stream FARM_TASKS: TimeoutError: nats: timeout"
    )


async def test_a_jetstream_refusal_fails_at_once() -> None:
    tries: list[int] = []

    async def setup() -> None:
        tries.append(1)
        raise BadRequestError(code=400, description="stream name already in use")

    with pytest.raises(NatsStartRefused, match="stream name already in use"):
        await NatsStart("agent", 30).set_up(connection(), "create a stream", setup)
    assert len(tries) == 1


async def test_a_request_nats_permissions_deny_fails_at_once() -> None:
    stand_in = Connection()
    nc = cast(Client, stand_in)
    tries: list[int] = []

    async def setup() -> None:
        tries.append(1)
        # How nats-py learns of a denied publish: an error on the connection, then no answer.
        stand_in.last_error = nats.errors.Error(
            "nats: Permissions Violation for Publish to $JS.API.STREAM.INFO.FARM_TASKS"
        )
        raise nats.errors.TimeoutError

    with pytest.raises(NatsStartRefused, match="check the permissions of this process's NATS user"):
        await NatsStart("agent", 30).set_up(nc, "find the stream FARM_TASKS", setup)
    assert len(tries) == 1


async def test_the_connect_gives_up_at_the_deadline(port: int) -> None:
    url = f"nats://127.0.0.1:{port}"
    with pytest.raises(NatsStartTimeout, match=f"waiting for a connection to NATS at {url}"):
        await NatsStart("scheduler", 0.5).connect(NatsAccess(url), "nobody-listens")


async def test_a_stream_not_made_yet_is_looked_up_often_and_said_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="farm_core.nats_start")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    tries: list[int] = []

    async def setup() -> str:
        tries.append(1)
        if len(tries) <= 5:
            raise StreamNotMade("the stream FARM_TASKS is not there yet")
        return "found"

    assert await NatsStart("agent", 30).set_up(connection(), "find the streams", setup) == "found"
    # The scheduler's start is awaited: looked up at least every half second, not every 4 s.
    assert waits == [0.25, 0.5, 0.5, 0.5, 0.5]
    said = [record.levelno for record in caplog.records if "did not find" in record.message]
    assert said == [logging.INFO, *[logging.DEBUG] * 4]
