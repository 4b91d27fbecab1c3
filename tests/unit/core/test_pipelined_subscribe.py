"""The acknowledgement inbox of pipelined publishes is subscribed again after a failed try."""

from typing import cast

import nats.errors
import pytest
from nats.aio.client import Client

from farm_core.pipelined import _Replies


class SubscribeFailsFirst:
    """A stand-in connection whose first SUB fails, as on a connection that is closing."""

    def __init__(self) -> None:
        self.subscribes = 0

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def subscribe(self, subject: str) -> None:
        self.subscribes += 1
        if self.subscribes == 1:
            raise nats.errors.ConnectionClosedError
        raise nats.errors.NoServersError  # ends the send here: only the retry matters


async def test_a_send_after_a_failed_subscribe_subscribes_again() -> None:
    connection = SubscribeFailsFirst()
    replies = _Replies(cast(Client, connection))

    with pytest.raises(nats.errors.ConnectionClosedError):
        await replies.send_many([("farm.audit.x", b"", {})], 1.0, [])
    # Had the first try counted as subscribed, this send would go out with no inbox
    # to read its acknowledgement from.
    with pytest.raises(nats.errors.NoServersError):
        await replies.send_many([("farm.audit.x", b"", {})], 1.0, [])

    assert connection.subscribes == 2
