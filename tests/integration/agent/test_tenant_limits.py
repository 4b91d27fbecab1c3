"""A tenant's maxRunningTasks, held farm-wide by the agents: its other tasks wait queued."""

import time
import uuid

import pytest
from nats.js import JetStreamContext

from farm_agent.kv import tenant_slots_bucket
from farm_agent.limits.slots import Slots
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import (
    RUNNING,
    SUCCEEDED,
    Events,
    StartIntake,
    content_of,
    once,
    publish,
    start_two_agents,
    waits,
)
from tests.pages import Site

pytestmark = pytest.mark.integration


async def start_two_agents_of_one_tenant(start_intake: StartIntake) -> None:
    """Two agents the host limits do not slow, that look again soon for a busy tenant."""
    await start_two_agents(
        start_intake, host_max_concurrency=10, host_max_rate=100, tenant_wait_seconds=0.2
    )


async def test_a_tenants_tasks_never_run_more_than_its_limit_at_once(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_two_agents_of_one_tenant(start_intake)
    counter = uuid.uuid4().hex
    waits_before = waits("tenant_limit")
    task_ids = [
        await publish(
            js,
            once(content_of(site, f"/count/{counter}?ms=800")),
            tenant="acme",
            tenant_max_running=1,
        )
        for _ in range(3)
    ]

    for task_id in task_ids:
        final = await events.final(task_id, within=60)
        # Waiting for the tenant's slot is no attempt: the single attempt succeeded.
        assert (final.status, final.attempt) == (SUCCEEDED, 1)

    assert site.most_in_flight[counter] == 1
    assert waits("tenant_limit") > waits_before
    # Each ran once: a held task reported nothing until it ran.
    assert [events.statuses(task_id).count(RUNNING) for task_id in task_ids] == [1, 1, 1]


async def test_a_tenant_without_a_limit_is_not_held_nor_by_a_busy_neighbour(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake(concurrency=4, host_max_concurrency=10, host_max_rate=100)
    limited, free = uuid.uuid4().hex, uuid.uuid4().hex
    waits_before = waits("tenant_limit")
    busy = await publish(
        js, content_of(site, f"/count/{limited}?ms=1500"), tenant="acme", tenant_max_running=1
    )
    task_ids = [
        await publish(js, content_of(site, f"/count/{free}?ms=15000&meet=2"), tenant="globex")
        for _ in range(3)
    ]

    for task_id in [busy, *task_ids]:
        final = await events.final(task_id, within=60)
        assert (final.status, final.attempt) == (SUCCEEDED, 1)

    # Run side by side (as far as the shared browsers allow), and never handed back.
    assert site.most_in_flight[free] >= 2
    assert waits("tenant_limit") == waits_before


async def test_the_slot_of_an_agent_that_died_lapses(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    # A lease that its agent, now dead, will never renew nor give back.
    lapses_at = time.time() + 1.5
    slots = await tenant_slots_bucket(js)
    await slots.put("acme", Slots(leases={"dead-agent": lapses_at}).to_bytes())
    await start_intake(tenant_wait_seconds=0.2)

    task_id = await publish(js, once(content_of(site)), tenant="acme", tenant_max_running=1)

    final = await events.final(task_id, within=30)
    assert (final.status, final.attempt) == (SUCCEEDED, 1)
    started = events.of(task_id)[0]
    assert started.status == RUNNING
    assert started.time.ToNanoseconds() / 1e9 >= lapses_at - 0.05


HELD_BACKLOG = 1100
"""Held tasks of one tenant, more than JetStream's default of 1,000 pending messages a
consumer may have: each handed-back task stays pending until it is offered again."""


async def test_a_held_backlog_does_not_starve_another_tenants_later_task(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    # Held tasks come back seldom here: what is shown is the consumer's pending limit.
    await start_two_agents(
        start_intake, host_max_concurrency=10, host_max_rate=1000, tenant_wait_seconds=5.0
    )
    gate = f"held-{uuid.uuid4().hex}"
    # Holds acme's one running slot until the test releases it (the gate's own bound is
    # past the test's waits: publishing the backlog takes a loaded machine half a minute).
    running = await publish(
        js,
        once(content_of(site, f"/gate/{gate}?wait=150", timeout_ms=170_000)),
        tenant="acme",
        tenant_max_running=1,
    )
    await assert_eventually(lambda: RUNNING in events.statuses(running), within=20)
    for _ in range(HELD_BACKLOG):
        await publish(js, content_of(site), tenant="acme", tenant_max_running=1)
    later = await publish(js, once(content_of(site)), tenant="globex")

    try:
        # Started while every acme task but the first is still held.
        final = await events.final(later, within=30)
        assert (final.status, final.attempt) == (SUCCEEDED, 1)
        assert events.statuses(running) == [RUNNING]
    finally:
        site.release(gate)
