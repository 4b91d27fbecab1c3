"""Pipelined JetStream publishes against a real nats-server: a group leaves without the
event loop running anything else between its publishes, and each is acknowledged."""

import asyncio
import secrets

import pytest

from farm_core import pipelined
from farm_core.nats_access import NatsAccess
from farm_core.queue import AUDIT_STREAM, audit_subject, connect, ensure_audit_stream
from tests.conftest import NatsServer

pytestmark = pytest.mark.integration


async def test_a_group_of_publishes_is_sent_without_yielding_and_each_is_stored(
    nats_server: NatsServer,
) -> None:
    connection = await connect(NatsAccess(nats_server.url), "test-pipelined")
    try:
        js = connection.jetstream()
        await ensure_audit_stream(js)
        subject = audit_subject(f"pipelined{secrets.token_hex(4)}")
        turns = 0

        async def other_work() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        # The client's flusher, like this task, runs only when a publish yields.
        other = asyncio.create_task(other_work())
        await asyncio.sleep(0)
        turns_before = turns
        acks = [
            await pipelined.send(js, subject, b"record", {"Nats-Msg-Id": f"m{index}"}, 5.0)
            for index in range(200)
        ]
        turns_during = turns - turns_before
        other.cancel()
        done, pending = await asyncio.wait(acks, timeout=10)
        info = await js.stream_info(AUDIT_STREAM, subjects_filter=subject)
    finally:
        await connection.close()

    assert turns_during == 0
    assert not pending and all(ack.exception() is None for ack in done)
    assert (info.state.subjects or {}).get(subject) == 200
