"""An agent claims a task routed to its region before it starts it (farm_routes)."""

import uuid

import pytest
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError

from farm_core.queue import ROUTES_BUCKET
from farm_core.shared_buckets import routes_bucket
from tests.integration.agent.conftest import (
    FAILED,
    QUEUED,
    SUCCEEDED,
    Events,
    StartIntake,
    content_of,
    publish,
)
from tests.pages import Site

pytestmark = pytest.mark.integration


async def test_a_routed_task_is_claimed_started_and_runs(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake()
    key = f"claim-{uuid.uuid4().hex}"

    final = await events.final(await publish(js, content_of(site), claim_key=key))

    assert final.status == SUCCEEDED
    assert (await (await routes_bucket(js)).get(key)).value == b"started"


async def test_a_route_claim_bucket_deleted_under_the_agent_fails_the_attempt_naming_it(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    # Before the fix, an unreadable claim was a wait without end: the task stayed QUEUED.
    await start_intake(retry_base_seconds=0.05, retry_max_seconds=0.1)
    await js.delete_key_value(ROUTES_BUCKET)
    spec = content_of(site)
    spec.max_attempts = 2
    key = f"claim-{uuid.uuid4().hex}"

    task_id = await publish(js, spec, claim_key=key)
    final = await events.final(task_id, within=60)

    # The scheduler's bucket is not the agent's to make again: each attempt fails.
    assert [(event.status, event.attempt) for event in events.of(task_id)] == [
        (QUEUED, 1),
        (FAILED, 2),
    ]
    assert (final.error.code, final.error.retryable) == ("INTERNAL", True)
    assert final.error.message.startswith(
        "region: whether the task may run in this region (its route claim) is unknown, so the "
        f"task did not start: entry {key!r} of NATS KV bucket {ROUTES_BUCKET} could not be read: "
    )
    with pytest.raises(BucketNotFoundError):
        await js.key_value(ROUTES_BUCKET)
