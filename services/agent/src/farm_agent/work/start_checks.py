"""Whether a delivered task may start on this agent now, past its cancel and attempt checks.

An earlier attempt that may still run (a redelivery, holders.py) makes it wait; a
route claim (farm_routes) taken by another region acks it unrun; a claim or limit
that cannot be read over a live NATS connection fails the attempt (`limit_unknown`).
"""

import datetime as dt
import logging

import nats.errors

from farm.queue.v1 import queue_pb2
from farm_agent.errors import TaskFailure
from farm_agent.limits.leases import Unreadable, unreadable
from farm_agent.work.attempt_ends import AttemptEnds
from farm_agent.work.attempt_tools import AttemptTools
from farm_agent.work.delivery import Delivery, DeliveryOutcome
from farm_agent.work.waits import WaitReason
from farm_core.queue import ROUTES_BUCKET
from farm_core.route_claims import Claim, take
from farm_core.task_errors import ErrorCode

log = logging.getLogger(__name__)


def limit_unknown(field: str, limit: str, unreadable: Unreadable) -> TaskFailure:
    """The failure of an attempt that cannot know whether `limit` lets it start.

    Not a wait: a wait has no end when the farm's state cannot be read, so the
    attempt fails and the task is retried (or fails) like any other attempt.
    """
    return TaskFailure(
        ErrorCode.INTERNAL,
        f"{field}: {limit} is unknown, so the task did not start: {unreadable.cause}",
        retryable=not unreadable.lasting,
    )


async def held_elsewhere(
    tools: AttemptTools, task_id: str, ends: AttemptEnds, deadline: dt.datetime | None
) -> bool:
    """Hands a redelivery back to wait while its earlier attempt may still run (holders.py).

    A first delivery has no earlier attempt: it is never held, and costs no request;
    nor is one whose earlier deliveries were all handed back (waits, retries), which
    costs no more request than the attempt number's when they were all waits (a
    tenant's held backlog): the wait count is read once a delivery (DeliveryWaits).
    """
    deliveries = ends.deliveries
    if deliveries <= 1 or await ends.waits.all_handed_back():
        return False
    held = await tools.bookkeeping.holders.holder(task_id)
    if held is None:
        return False
    log.info(
        "task %s delivery %d waits: agent %s may still run it (%s)",
        task_id,
        deliveries,
        held.agent_id or "?",
        held.why,
    )
    await ends.hand_back_as_wait(WaitReason.HELD_ELSEWHERE, held.retry_after_seconds, deadline)
    return True


async def taken_elsewhere(
    tools: AttemptTools,
    item: queue_pb2.WorkItem,
    ends: AttemptEnds,
    delivery: Delivery,
    deadline: dt.datetime | None,
    max_attempts: int,
) -> bool:
    """Claims a routed task for this region; True if it was moved away (acked unrun).

    Also True when the claim cannot be read: while the agent's NATS connection is
    down the task is handed back to wait; over a live connection the attempt fails
    (a wait would have no end, and running the task unclaimed could run it twice).
    """
    key = item.claim_key
    if not key:
        return False
    bookkeeping = tools.bookkeeping
    try:
        claim = await take(bookkeeping.route_claims, key, Claim.STARTED)
    except (nats.errors.Error, TimeoutError) as error:
        log.warning("could not claim the route of task %s: %r", item.task_id, error)
        if not bookkeeping.nats_connected():
            delay = tools.settings.retry_delay_seconds
            await ends.hand_back_as_wait(WaitReason.ROUTE_UNKNOWN, delay, deadline)
            return True
        failure = limit_unknown(
            "region",
            "whether the task may run in this region (its route claim)",
            unreadable(ROUTES_BUCKET, key, error),
        )
        await ends.after_failure(failure, max_attempts, deadline, cut_short_by_deadline=False)
        return True
    if claim is Claim.STARTED:
        return False
    log.info("task %s was moved to any region: its message here is void", item.task_id)
    await delivery.ack(DeliveryOutcome.MOVED)
    return True
