"""A NATS link that goes silent without closing (a partition) is dropped and made again.

Nothing closes the socket, so only the client's PINGs that go unanswered tell: with
nats-py's defaults (a PING every 120 s, two outstanding) a connection stayed
"connected" for 4 to 6 minutes, and an agent's in-progress acks counted as reached
all that while. `farm_core.queue.connect` pings every PING_INTERVAL_SECONDS; the test
has it ping every TEST_PING_INTERVAL_SECONDS instead, to wait out the same three pings sooner.
"""

from collections.abc import AsyncIterator

import pytest

from farm_core import queue
from farm_core.nats_access import NatsAccess
from farm_core.queue import MAX_OUTSTANDING_PINGS, PING_INTERVAL_SECONDS, connect
from tests.conftest import NatsServer
from tests.helpers import assert_eventually
from tests.tcp_link import CuttableLink

pytestmark = pytest.mark.integration

# When the link's silence is noticed at the latest, and a margin for a loaded machine.
NOTICED_WITHIN = (MAX_OUTSTANDING_PINGS + 1) * PING_INTERVAL_SECONDS + 6
TEST_PING_INTERVAL_SECONDS = 0.5
TEST_NOTICED_WITHIN = (MAX_OUTSTANDING_PINGS + 1) * TEST_PING_INTERVAL_SECONDS + 6


@pytest.fixture
def quick_pings(monkeypatch: pytest.MonkeyPatch) -> None:
    """`connect` pings every TEST_PING_INTERVAL_SECONDS: the same rule, seen sooner."""
    monkeypatch.setattr(queue, "PING_INTERVAL_SECONDS", TEST_PING_INTERVAL_SECONDS)


@pytest.fixture
async def link(fresh_nats_server: NatsServer) -> AsyncIterator[CuttableLink]:
    """A TCP link to the server that the test can silence without closing it."""
    link = CuttableLink(int(fresh_nats_server.url.rsplit(":", 1)[1]))
    await link.mend()
    yield link
    link.release_answers()
    await link.cut()


async def test_a_silent_link_is_dropped_within_three_pings_and_made_again_once_it_answers(
    link: CuttableLink, quick_pings: None
) -> None:
    assert NOTICED_WITHIN <= 20
    client = await connect(NatsAccess(link.url), "farm-test-silent-link")
    try:
        await client.flush(timeout=5)
        link.hold_answers()  # the server's bytes (its PONGs) no longer arrive; nothing closes
        await assert_eventually(
            lambda: not client.is_connected,
            within=TEST_NOTICED_WITHIN,
            message="the client still takes the silent link for connected",
        )
        link.release_answers()
        await assert_eventually(lambda: client.is_connected, within=15, message="no reconnect")
        await client.flush(timeout=5)
    finally:
        await client.close()
