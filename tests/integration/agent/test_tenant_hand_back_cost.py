"""What a tenant-busy hand-back costs the agent in NATS requests.

A flooding tenant at its maxRunningTasks has its tasks handed back over and over;
each hand-back holds one of the agent's places for as long as its round trips take,
so other tenants' tasks wait behind them (docs/reliability.md, "Tenant limits").
"""

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from farm_agent.kv import tenant_slots_bucket
from farm_agent.limits.slots import Slots
from tests.helpers import assert_eventually
from tests.integration.agent.conftest import StartIntake, content_of, publish, waits
from tests.pages import Site

pytestmark = pytest.mark.integration

HAND_BACKS = 4
"""Redeliveries watched, past the first delivery (which reads no wait record)."""
MOST_REQUESTS = 4
"""Per redelivery: its wait record, its ended mark, the tenant's slots, the wait count."""

NAK = "nak"


def recording(nc: Client, seen: list[str]) -> None:
    """Notes each key-value request of `nc` (by subject) and each nak, in order."""
    request: Callable[..., Awaitable[Any]] = nc.request
    publish: Callable[..., Awaitable[None]] = nc.publish

    async def counted_request(subject: str, *args: Any, **kwargs: Any) -> Any:
        if "KV_" in subject or subject.startswith("$KV."):
            seen.append(subject)
        return await request(subject, *args, **kwargs)

    async def counted_publish(
        subject: str, payload: bytes = b"", *args: Any, **kwargs: Any
    ) -> None:
        if payload.startswith(b"-NAK"):
            seen.append(NAK)
        await publish(subject, payload, *args, **kwargs)

    nc.request = counted_request  # type: ignore[method-assign]
    nc.publish = counted_publish  # type: ignore[method-assign]


def per_hand_back(seen: list[str]) -> list[list[str]]:
    """The requests before each nak, one list a delivery."""
    deliveries: list[list[str]] = [[]]
    for subject in seen:
        if subject == NAK:
            deliveries.append([])
        else:
            deliveries[-1].append(subject)
    return deliveries[:-1]


async def test_a_tenant_busy_hand_back_costs_few_requests(
    js: JetStreamContext, start_intake: StartIntake, site: Site
) -> None:
    # Another agent's lease holds the tenant's one slot through the test.
    slots = await tenant_slots_bucket(js)
    await slots.put("acme", Slots(leases={"other-agent": time.time() + 120}).to_bytes())
    intake = await start_intake(tenant_wait_seconds=0.05, tenant_wait_max_seconds=0.05)
    seen: list[str] = []
    recording(intake.connection, seen)
    waits_before = waits("tenant_limit")

    await publish(js, content_of(site), tenant="acme", tenant_max_running=1)

    # The naks themselves, not the wait counter: it counts a hand-back before its nak goes.
    await assert_eventually(lambda: seen.count(NAK) >= 1 + HAND_BACKS, within=30)
    assert waits("tenant_limit") >= waits_before + 1 + HAND_BACKS
    redeliveries = per_hand_back(seen)[1 : 1 + HAND_BACKS]
    assert len(redeliveries) == HAND_BACKS
    for requests in redeliveries:
        assert len(requests) <= MOST_REQUESTS, requests
    await slots.delete("acme")
