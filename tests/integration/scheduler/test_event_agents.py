"""The reporting agent of an event is the one its subject names, which NATS users bind.

An agent's NATS user may publish only `events.tasks.*.<its id>` and
`events.sessions.*.<its id>` (tests/integration/cli/test_nats_users.py): here the
scheduler, on a real nats-server and SQLite, applies no event whose payload names
another agent than its subject, and so none that reports for another agent's attempt
or closes another agent's session.
"""

import uuid

import pytest

from farm.queue.v1 import queue_pb2
from farm.sessions.v1 import sessions_pb2
from farm_core.queue import event_subject
from farm_core.sessions import SessionOrder, closed_subject
from tests.helpers import assert_eventually
from tests.integration.scheduler.agent_side import Queue, sessions_applied
from tests.integration.scheduler.conftest import (
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Scheduler,
    StartScheduler,
    counted,
    sample,
    succeeded_result,
    until,
)
from tests.integration.scheduler.scripted_agents import ScriptedAgent, opened, sessions_of

pytestmark = pytest.mark.integration

REFUSED = "farm_refused_agent_events_total"


def legacy_subject(task_id: str) -> str:
    """The subject agents reported on before their NATS user bound their id."""
    return f"events.tasks.{task_id}"


async def test_an_event_whose_payload_names_another_agent_than_its_subject_is_dropped(
    scheduler: Scheduler, queue: Queue
) -> None:
    task = await scheduler.create()
    await queue.report(task.id, RUNNING, 1, agent_id="agent-2")
    await until(scheduler, task.id, RUNNING)
    before = sample(REFUSED, kind="tasks", reason="agent_differs")

    # agent-1's NATS user may publish only its own subject: it claims to be agent-2.
    await queue.report(
        task.id,
        SUCCEEDED,
        1,
        agent_id="agent-2",
        result=succeeded_result(),
        subject=event_subject(task.id, "agent-1"),
    )
    await assert_eventually(queue.events_applied, message="events not applied")

    assert await scheduler.status(task.id) == RUNNING
    await counted(REFUSED, before + 1, kind="tasks", reason="agent_differs")
    # Reported as itself, agent-1 still cannot end the attempt agent-2 holds.
    await queue.report(task.id, SUCCEEDED, 1, agent_id="agent-1", result=succeeded_result())
    await assert_eventually(queue.events_applied, message="events not applied")
    assert await scheduler.status(task.id) == RUNNING
    # agent-2's own report, on its own subject, does end it.
    await queue.report(task.id, SUCCEEDED, 1, agent_id="agent-2", result=succeeded_result())
    await until(scheduler, task.id, SUCCEEDED)


async def test_an_event_on_the_old_subject_is_dropped_unless_unbound_events_are_accepted(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler()
    task = await scheduler.create()
    before = sample(REFUSED, kind="tasks", reason="unbound")

    await queue.report(task.id, RUNNING, 1, subject=legacy_subject(task.id))
    await assert_eventually(queue.events_applied, message="events not applied")

    assert await scheduler.status(task.id) == QUEUED
    await counted(REFUSED, before + 1, kind="tasks", reason="unbound")


async def test_an_event_on_the_old_subject_is_applied_during_an_upgrade_window(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler(accept_unbound_events=True)
    task = await scheduler.create()

    await queue.report(task.id, RUNNING, 1, subject=legacy_subject(task.id))

    await until(scheduler, task.id, RUNNING)


async def test_an_agent_closes_only_the_sessions_it_holds(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    scheduler = await start_scheduler()
    holder = await ScriptedAgent(queue, "holder").start()
    try:
        sessions = sessions_of(scheduler)
        session = await sessions.create()
        assert holder.session_ids == [session.id]

        for agent_id, claimed in (("thief", "holder"), ("thief", "thief")):
            await publish_close(queue, session.id, subject_agent=agent_id, claimed=claimed)
        await assert_eventually(
            lambda: sessions_applied(queue), message="session events not applied"
        )
        assert (await sessions.get(session.id)).state == sessions_pb2.SESSION_STATE_ACTIVE

        await publish_close(queue, session.id, subject_agent="holder", claimed="holder")

        async def closed() -> bool:
            return (await sessions.get(session.id)).state == sessions_pb2.SESSION_STATE_CLOSED

        await assert_eventually(closed, message="the holder's close was not recorded")
        assert (await sessions.get(session.id)).close_reason == "IDLE_TIMEOUT"
    finally:
        await holder.stop_answering()


async def publish_close(queue: Queue, session_id: str, *, subject_agent: str, claimed: str) -> None:
    """Publishes an IDLE_TIMEOUT close of the session, naming `claimed`, on `subject_agent`'s."""
    closed = queue_pb2.SessionClosed(
        event_id=uuid.uuid4().hex,
        session_id=session_id,
        agent_id=claimed,
        reason="IDLE_TIMEOUT",
    )
    closed.time.GetCurrentTime()
    await queue.js.publish(
        closed_subject(session_id, subject_agent),
        closed.SerializeToString(),
        headers={"Nats-Msg-Id": closed.event_id},
    )


async def test_an_agents_answer_closes_only_the_session_it_was_ordered_about(
    start_scheduler: StartScheduler, queue: Queue
) -> None:
    # Its answer to a close of its own session names another agent's session.
    scheduler = await start_scheduler(session_agent_lost_seconds=60)
    holder = await ScriptedAgent(queue, "holder").start()
    sessions = sessions_of(scheduler)
    victim = await sessions.create()
    thief = ScriptedAgent(queue, "thief")

    def close_the_victim(verb: SessionOrder, data: bytes) -> queue_pb2.SessionReply:
        if verb is not SessionOrder.CLOSE:
            return opened(verb, data)
        closed = thief.closed(victim.id, scheduler.tenant, "IDLE_TIMEOUT")
        return queue_pb2.SessionReply(closed=closed)

    thief.answer = close_the_victim
    await thief.start()
    try:
        own = await sessions.create()
        assert (victim.agent_id, own.agent_id) == ("holder", "thief")
        answered = await sessions.close(own.id)
    finally:
        await holder.stop_answering()
        await thief.stop_answering()

    assert (answered.id, answered.state) == (own.id, sessions_pb2.SESSION_STATE_CLOSED)
    assert (await sessions.get(victim.id)).state == sessions_pb2.SESSION_STATE_ACTIVE
