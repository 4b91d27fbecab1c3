"""How a session ended, as the rest of the farm learns it: its SessionClosed event.

The agent writes no session route: the scheduler alone writes and removes them
(farm_scheduler's sessions.routes), and the agent's NATS user may not touch the
`farm_sessions` bucket (farm_core.nats_roles). A close is reported twice: once as it
begins, before the clients' sockets end (report_closing), then when it is done,
with the recording (publish_closed, tried a few times). The scheduler removes the
session's route as it applies the close's event.
"""

import asyncio
import logging

import nats.errors
from nats.js import JetStreamContext
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from farm.queue.v1 import queue_pb2
from farm_core.sessions import closed_subject

log = logging.getLogger(__name__)

PUBLISH_TRIES = 5
PUBLISH_TIMEOUT_SECONDS = 5.0
CLOSING_TIMEOUT_SECONDS = 2.0
"""How long a close waits for its first report to be stored before it ends the sockets."""


async def report_closing(js: JetStreamContext | None, closed: queue_pb2.SessionClosed) -> None:
    """Publishes that the session is closing, as `closed` says, once and bounded.

    Sent before the close ends the clients' sockets: once it is stored, GetSession
    finds the session closed (the scheduler reads the session's last report), so a
    client that saw its socket's close frame never sees the session ACTIVE. The
    final report, with the recording, follows when the close is done; should this
    one fail, that one still tells.
    """
    if js is None:
        return
    try:
        await js.publish(
            closed_subject(closed.session_id, closed.agent_id),
            closed.SerializeToString(),
            timeout=CLOSING_TIMEOUT_SECONDS,
            headers={"Nats-Msg-Id": closed.event_id},
        )
    except (nats.errors.Error, TimeoutError) as error:
        log.warning("session %s: reporting its close early failed: %s", closed.session_id, error)


async def publish_closed(js: JetStreamContext | None, closed: queue_pb2.SessionClosed) -> None:
    """Publishes how the session ended, trying a few times (none without NATS)."""
    if js is None:
        return
    subject = closed_subject(closed.session_id, closed.agent_id)
    payload = closed.SerializeToString()
    retrying = AsyncRetrying(
        stop=stop_after_attempt(PUBLISH_TRIES),
        wait=wait_exponential(multiplier=0.5, max=5.0),
        retry=retry_if_exception_type((nats.errors.Error, TimeoutError)),
        before_sleep=lambda state: log.warning(
            "session %s: publishing its close failed (try %d of %d): %s",
            closed.session_id,
            state.attempt_number,
            PUBLISH_TRIES,
            state.outcome.exception() if state.outcome else None,
        ),
        reraise=True,
        # Looked up when it pauses (not bound at import), so a test can count the pauses.
        sleep=lambda seconds: asyncio.sleep(seconds),
    )
    try:
        async for trial in retrying:
            with trial:
                await js.publish(
                    subject,
                    payload,
                    timeout=PUBLISH_TIMEOUT_SECONDS,
                    headers={"Nats-Msg-Id": closed.event_id},
                )
    except (nats.errors.Error, TimeoutError) as error:
        log.warning(
            "session %s: publishing its close failed %d times, last: %s",
            closed.session_id,
            PUBLISH_TRIES,
            error,
        )
