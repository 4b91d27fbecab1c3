"""The farm-wide circuit breaker of a target origin, against real pages and a real nats-server."""

import asyncio
import time

import pytest
from nats.js import JetStreamContext
from prometheus_client import REGISTRY

from farm.tasks.v1 import tasks_pb2
from farm_agent.kv import breakers_bucket, origin_key
from farm_agent.limits.circuit import Circuit, CircuitState
from tests.integration.agent.conftest import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    Events,
    StartIntake,
    content_of,
    once,
    publish,
    waits,
)
from tests.pages import Site, serve_site

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
COOLDOWN_SECONDS = 1.5
# The tenant `publish` gives a task when none is named.
TENANT = "acme"


def failing(site: Site) -> tasks_pb2.TaskSpec:
    spec = once(content_of(site, "/status/503", timeout_ms=5000))
    spec.fail_on_http_error = True
    return spec


def transitions(state: str) -> float:
    value = REGISTRY.get_sample_value("agent_circuit_transitions_total", {"state": state})
    return value or 0.0


async def breaker(js: JetStreamContext, site: Site) -> Circuit:
    """The breaker of the site's origin (127.0.0.1 and its port)."""
    entry = await (await breakers_bucket(js)).get(origin_key(site.url("/"), TENANT))
    return Circuit.from_bytes(entry.value or b"")


async def until_cooled_down(js: JetStreamContext, site: Site) -> None:
    """Sleeps out the open breaker's cool-down: the breaker's own clock, nothing to await."""
    opened = await breaker(js, site)
    assert opened.state is CircuitState.OPEN
    await asyncio.sleep(max(0.0, opened.opened_at + COOLDOWN_SECONDS - time.time()) + 0.05)


async def fail_on_the_host(js: JetStreamContext, events: Events, site: Site, times: int) -> None:
    for _ in range(times):
        final = await events.final(await publish(js, failing(site)))
        assert final.error.code == "HTTP_ERROR"


async def test_in_fail_mode_an_open_breaker_fails_tasks_fast_until_a_trial_closes_it(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake(
        breaker_failures=3,
        breaker_cooldown_seconds=COOLDOWN_SECONDS,
        breaker_mode="fail",
        concurrency=1,
    )
    opened, half_opened, closed = (
        transitions("open"),
        transitions("half_open"),
        transitions("closed"),
    )

    await fail_on_the_host(js, events, site, times=2)
    assert (await breaker(js, site)).state is CircuitState.CLOSED
    await fail_on_the_host(js, events, site, times=1)
    assert (await breaker(js, site)).state is CircuitState.OPEN

    blocked_id = await publish(js, once(content_of(site)))
    blocked = await events.final(blocked_id)
    assert events.statuses(blocked_id) == [FAILED]
    assert (blocked.error.code, blocked.error.retryable) == ("CIRCUIT_OPEN", True)
    assert HOST in blocked.error.message

    # After the cool-down one trial goes through; it fails, so the breaker opens again.
    await until_cooled_down(js, site)
    await fail_on_the_host(js, events, site, times=1)
    assert (await breaker(js, site)).state is CircuitState.OPEN
    reblocked = await events.final(await publish(js, once(content_of(site))))
    assert reblocked.error.code == "CIRCUIT_OPEN"

    # The next trial succeeds and closes it.
    await until_cooled_down(js, site)
    trial = await events.final(await publish(js, once(content_of(site))))
    assert trial.status == SUCCEEDED
    assert (await breaker(js, site)).state is CircuitState.CLOSED
    assert transitions("open") - opened == 2
    assert transitions("half_open") - half_opened == 2
    assert transitions("closed") - closed == 1


async def test_in_wait_mode_a_task_waits_out_the_open_breaker_without_using_an_attempt(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake(breaker_failures=2, breaker_cooldown_seconds=COOLDOWN_SECONDS, concurrency=1)
    await fail_on_the_host(js, events, site, times=2)
    opened = await breaker(js, site)
    assert opened.state is CircuitState.OPEN
    waited = waits("breaker_open")

    task_id = await publish(js, once(content_of(site)))
    final = await events.final(task_id, within=15)

    assert final.status == SUCCEEDED
    assert [(event.status, event.attempt) for event in events.of(task_id)] == [
        (RUNNING, 1),
        (SUCCEEDED, 1),
    ]
    started = events.of(task_id)[0].time.ToNanoseconds() / 1e9
    assert started >= opened.opened_at + COOLDOWN_SECONDS
    assert waits("breaker_open") > waited
    assert (await breaker(js, site)).state is CircuitState.CLOSED


async def test_an_open_breaker_holds_back_only_its_own_port_of_the_host(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake(breaker_failures=2, breaker_cooldown_seconds=60, breaker_mode="fail")
    await fail_on_the_host(js, events, site, times=2)
    assert (await breaker(js, site)).state is CircuitState.OPEN

    with serve_site() as other_port:
        other = await events.final(await publish(js, once(content_of(other_port))))
    blocked = await events.final(await publish(js, once(content_of(site))))

    assert other.status == SUCCEEDED
    assert blocked.error.code == "CIRCUIT_OPEN"
    assert site.base_url.removeprefix("http://") in blocked.error.message


async def test_one_tenants_failures_on_a_host_do_not_hold_back_another_tenants_tasks(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    """Before, the breaker was the farm's per host: a tenant could open it for any host
    (a path there that answers 503, five times) and so fail another tenant's tasks."""
    await start_intake(breaker_failures=2, breaker_cooldown_seconds=60, breaker_mode="fail")
    await fail_on_the_host(js, events, site, times=2)

    other = await events.final(await publish(js, once(content_of(site)), tenant="other"))
    blocked = await events.final(await publish(js, once(content_of(site))))

    assert other.status == SUCCEEDED
    assert blocked.error.code == "CIRCUIT_OPEN"
