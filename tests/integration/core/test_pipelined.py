"""Pipelined JetStream publishes against a real nats-server: a group leaves without the
event loop running anything else between its publishes, and each is acknowledged."""

import asyncio
import secrets

import pytest
from nats.errors import BadHeaderError, BadSubjectError
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError, TooManyStalledMsgsError

from farm_core import pipelined
from farm_core.nats_access import NatsAccess
from farm_core.pipelined import _Direct
from farm_core.queue import AUDIT_STREAM, audit_subject, connect, ensure_audit_stream
from tests.conftest import NatsServer
from tests.helpers import assert_eventually

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


async def test_each_publish_gets_its_own_acknowledgement_or_jetstreams_refusal(
    nats_server: NatsServer,
) -> None:
    connection = await connect(NatsAccess(nats_server.url), "test-pipelined")
    try:
        js = connection.jetstream()
        await ensure_audit_stream(js)
        run = secrets.token_hex(4)
        subject = audit_subject(f"pipelined{run}")
        stored = [
            await pipelined.send(js, subject, b"record", {"Nats-Msg-Id": f"{run}.{index}"}, 5.0)
            for index in range(3)
        ]
        again = await pipelined.send(js, subject, b"record", {"Nats-Msg-Id": f"{run}.0"}, 5.0)
        # JetStream answers with an error: the stream is not the one the publish expects.
        refused = await pipelined.send(
            js,
            subject,
            b"record",
            {"Nats-Msg-Id": f"{run}.9", "Nats-Expected-Stream": "OTHER"},
            5.0,
        )
        nobody = await pipelined.send(js, "no.stream.here", b"record", {}, 5.0)
        acks = [await asyncio.wait_for(ack, 5) for ack in stored]
        duplicate = await asyncio.wait_for(again, 5)
        with pytest.raises(APIError):
            await asyncio.wait_for(refused, 5)
        with pytest.raises(NoStreamResponseError):
            await asyncio.wait_for(nobody, 5)
    finally:
        await connection.close()

    assert {ack.stream for ack in acks} == {AUDIT_STREAM}
    assert [ack.seq - acks[0].seq for ack in acks] == [0, 1, 2]
    assert not any(ack.duplicate for ack in acks)
    assert duplicate.duplicate and duplicate.seq == acks[0].seq


async def test_a_send_waits_for_a_slot_while_the_limit_of_publishes_awaits_acknowledgement(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipelined, "IN_FLIGHT_LIMIT", 2)
    connection = await connect(NatsAccess(nats_server.url), "test-pipelined")
    try:
        js = connection.jetstream()
        # A core subscriber that never answers: the publishes' acknowledgements never come.
        subject = f"silent.{secrets.token_hex(4)}"
        await connection.subscribe(subject)
        waiting = [await pipelined.send(js, subject, b"record", {}, 5.0) for _ in range(2)]
        with pytest.raises(TooManyStalledMsgsError):
            await pipelined.send(js, subject, b"record", {}, 0.2)
        later = asyncio.create_task(pipelined.send(js, subject, b"record", {}, 5.0))
        await asyncio.sleep(0.1)
        stalled = not later.done()
        await pipelined.confirmed(waiting[:1], 0)  # gives up on it: the slot is freed
        third = await asyncio.wait_for(later, 5)
        third.cancel()
        waiting[1].cancel()
    finally:
        await connection.close()

    assert stalled


async def test_send_many_writes_the_commands_nats_py_writes_and_its_replies_skip_the_queue(
    nats_server: NatsServer,
) -> None:
    # Guards pipelined's use of nats-py's internals (see its docstring): the pending
    # buffer a publish appends its command to, and the queue the reader puts a
    # subscription's messages into.
    connection = await connect(NatsAccess(nats_server.url), "test-pipelined")
    try:
        headers = {"Nats-Msg-Id": "m1", "traceparent": "00-ab-cd-01"}
        await connection.publish("some.subject", b"payload", reply="_INBOX.x.7", headers=headers)
        by_nats_py = connection._pending[-1]
        await connection.publish("some.subject", b"payload", reply="_INBOX.x.8")
        bare_by_nats_py = connection._pending[-1]

        js = connection.jetstream()
        await ensure_audit_stream(js)
        subject = audit_subject(f"pipelined{secrets.token_hex(4)}")
        acks: list[asyncio.Future[PubAck]] = []
        await pipelined.send_many(
            js, [(subject, b"record", {"Nats-Msg-Id": f"d{i}"}) for i in range(50)], 5.0, acks
        )
        done, pending = await asyncio.wait(acks, timeout=10)
        # The replies nats-server writes, read without json.loads.
        stored = await connection.request(subject, b"record", 5, headers={"Nats-Msg-Id": "r"})
        duplicate = await connection.request(subject, b"record", 5, headers={"Nats-Msg-Id": "r"})
        replies = [sub for sub in connection._subs.values() if sub._pending_queue is not None]
        direct = [
            sub for sub in connection._subs.values() if isinstance(sub._pending_queue, _Direct)
        ]
    finally:
        await connection.close()

    assert b"".join(pipelined._command("some.subject", "_INBOX.x.7", headers, b"payload")) == (
        by_nats_py
    )
    assert b"".join(pipelined._command("some.subject", "_INBOX.x.8", {}, b"payload")) == (
        bare_by_nats_py
    )
    assert not pending and all(ack.exception() is None for ack in done)
    assert pipelined._PLAIN_ACK.fullmatch(stored.data or b"")
    assert b"duplicate" in (duplicate.data or b"")  # (parsed by json.loads)
    assert not pipelined._PLAIN_ACK.fullmatch(duplicate.data or b"")
    assert len(direct) == 1 and direct[0]._wait_for_msgs_task is None
    assert all(sub.pending_bytes == 0 and sub.pending_msgs == 0 for sub in replies)


async def test_send_many_refuses_what_nats_py_refuses_and_sends_the_messages_before(
    nats_server: NatsServer,
) -> None:
    connection = await connect(NatsAccess(nats_server.url), "test-pipelined")
    try:
        js = connection.jetstream()
        await ensure_audit_stream(js)
        subject = audit_subject(f"pipelined{secrets.token_hex(4)}")
        acks: list[asyncio.Future[PubAck]] = []
        with pytest.raises(BadHeaderError):
            bad = {"Bad\r\nPUB x 1": "v"}
            messages = [(subject, b"a", {}), (subject, b"b", bad), (subject, b"c", {})]
            await pipelined.send_many(js, messages, 5.0, acks)
        with pytest.raises(BadSubjectError):
            await pipelined.send_many(js, [("a b", b"x", {})], 5.0, acks)
        with pytest.raises(BadHeaderError):
            await pipelined.send_many(js, [(subject, b"x", {"Key": "a\r\nPUB x 1"})], 5.0, acks)
        stored = await pipelined.confirmed(acks, 5)
    finally:
        await connection.close()

    assert len(acks) == 1 and stored == set(acks)


async def test_publishes_sent_while_nats_is_away_are_stored_once_it_is_back(
    fresh_nats_server: NatsServer,
) -> None:
    connection = await connect(NatsAccess(fresh_nats_server.url), "test-pipelined")
    try:
        js = connection.jetstream()
        await ensure_audit_stream(js)
        subject = audit_subject(f"pipelined{secrets.token_hex(4)}")
        before: list[asyncio.Future[PubAck]] = []
        await pipelined.send_many(js, [(subject, b"a", {"Nats-Msg-Id": "a"})], 5.0, before)
        stored_before = await pipelined.confirmed(before, 5)
        fresh_nats_server.process.stop(timeout=5)
        await assert_eventually(lambda: not connection.is_connected, within=10)
        # Buffered by the client while it reconnects, as its own publish does.
        away: list[asyncio.Future[PubAck]] = []
        messages = [(subject, b"b", {"Nats-Msg-Id": f"b{i}"}) for i in range(20)]
        await pipelined.send_many(js, messages, 5.0, away)
        fresh_nats_server.process.start()
        stored_away = await pipelined.confirmed(away, 20)
        info = await js.stream_info(AUDIT_STREAM, subjects_filter=subject)
    finally:
        await connection.close()

    assert stored_before == set(before)
    assert len(away) == 20 and stored_away == set(away)
    assert (info.state.subjects or {}).get(subject) == 21
