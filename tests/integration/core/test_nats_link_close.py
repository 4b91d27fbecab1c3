"""A NatsLink closed while it connects: the connect is ended and its socket closed.

close() cancels a connect in progress at once, without waiting for it to finish
(against an absent NATS it never does): the connect, cancelled, closes its own socket.
"""

import asyncio
from dataclasses import dataclass

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from farm_core.cancel import cancel_and_wait
from farm_core.nats_access import NatsAccess
from farm_core.nats_link import NatsLink
from tests.conftest import NatsServer
from tests.helpers import TcpListener, assert_eventually

pytestmark = pytest.mark.integration


@dataclass
class SilentServer(TcpListener):
    """Takes connections and says nothing (no INFO): a NATS connect to it stays in progress."""

    async def answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client closes its end


async def prepared(js: JetStreamContext) -> JetStreamContext:
    return js


async def test_a_link_closed_while_it_connects_leaves_no_socket_open() -> None:
    async with SilentServer("127.0.0.1") as server:
        link = NatsLink(NatsAccess(f"nats://127.0.0.1:{server.port}"), "test-link")
        opening = asyncio.create_task(link.open(prepared))
        await assert_eventually(
            lambda: server.connections == 1, message="the link never began to connect"
        )
        # As the parts that hold a link stop: their task first, then the link.
        await cancel_and_wait(opening, "the link's open")
        await link.close()
        await assert_eventually(
            lambda: server.ended == 1, message="the connect's socket was left open"
        )
        assert link.client is None
        assert server.connections == 1


async def test_a_link_closed_after_it_connected_closes_the_connection(
    nats_server: NatsServer,
) -> None:
    link = NatsLink(NatsAccess(nats_server.url), "test-link")
    await link.open(prepared)
    client = link.client
    assert isinstance(client, Client) and client.is_connected
    await link.close()
    assert client.is_closed
    assert link.client is None
