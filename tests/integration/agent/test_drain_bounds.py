"""Drain stops the intake's fetching within the grace, whatever the fetch was waiting for.

Found by a trial: an agent whose NATS connection was closed drained for 5.8 s on a
2 s grace, its fetch loop waiting out a retry on the dead connection.
"""

import asyncio

import pytest

from tests.helpers import assert_eventually
from tests.integration.agent.conftest import StartIntake

pytestmark = pytest.mark.integration

# Far beyond the grace: a drain that waited on the fetch loop would take this long.
FETCH_WAIT_SECONDS = 30.0
GRACE_SECONDS = 1.0


async def test_drain_does_not_wait_out_a_fetch_retry_on_a_closed_connection(
    start_intake: StartIntake, caplog: pytest.LogCaptureFixture
) -> None:
    intake = await start_intake(fetch_wait_seconds=FETCH_WAIT_SECONDS, poll_seconds=0.2)
    await intake.connection.close()
    # The next poll's fetch fails, and the loop waits a fetch's wait before trying again.
    await assert_eventually(
        lambda: "fetching from" in caplog.text, message="no fetch tried on the closed connection"
    )

    draining = asyncio.create_task(intake.drain(GRACE_SECONDS))
    done, _ = await asyncio.wait({draining}, timeout=FETCH_WAIT_SECONDS / 2)
    assert draining in done, "the drain waits for the fetch loop's retry on a closed connection"
    await draining
