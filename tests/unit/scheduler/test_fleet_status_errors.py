"""What GetFleetStatus says when NATS fails its reads: NATS, its servers, how it failed."""

import nats.errors
import pytest

from farm_scheduler.status.snapshot import nats_failed

SERVERS = "nats://127.0.0.1:4222"
MISSING = "the agents' heartbeats, the task queues and the circuit breakers cannot be read"


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (nats.errors.TimeoutError(), "is not answering (timeout)"),
        (TimeoutError(), "is not answering (TimeoutError)"),
        (nats.errors.ConnectionClosedError(), "cannot be reached (connection closed)"),
        (nats.errors.NoServersError(), "cannot be reached (no servers available for connection)"),
        (nats.errors.NoRespondersError(), "failed the read (no responders available for request)"),
    ],
    ids=["nats-timeout", "timeout", "closed", "no-servers", "no-responders"],
)
def test_the_message_names_nats_its_servers_and_the_failure(
    error: BaseException, said: str
) -> None:
    assert nats_failed(SERVERS, error) == f"NATS at {SERVERS} {said}: {MISSING}"
