"""A NATS connection the server closed for good: the process hears of it, stops and exits.

nats-py reconnects by itself (for ever, as `farm_core.queue.connect` asks) when
the socket is lost, the server restarts or the connection goes stale. But a
server `-ERR` other than a stale connection or a permissions violation —
'Maximum Payload Violation', 'Authorization Violation', a parser error — moves
the client to CLOSED, and a closed client never comes back: its subscriptions,
pull consumers and KV watchers are dead while the process goes on. So a process
whose connection closed without its own `close` or `drain` is stopped (see
`farm_core.server.serve`) and exits non-zero, for its supervisor (`farm up`,
Kubernetes) to start it again on a fresh connection.
"""

import contextlib
import logging
from collections.abc import Callable, Iterator

from nats.aio.client import Client

log = logging.getLogger(__name__)

_listeners: list[Callable[[str], None]] = []


class OwnedClient(Client):
    """A nats-py client that knows whether this process closed it, or the server did."""

    closed_by_process = False

    async def close(self) -> None:
        """Closes the connection, as this process's own decision; also while reconnecting.

        A second close, or one of a connection already closed, does nothing.
        """
        self.closed_by_process = True
        if self.is_closed:
            return
        if self.is_reconnecting or self.is_connecting:
            # What was buffered while reconnecting can no longer be sent: the close
            # stops the reconnect. nats-py (2.16) would write it to the lost socket's
            # transport, which uvloop refuses with a RuntimeError ("the handler is
            # closed"), leaving the close half done.
            self._pending.clear()
            self._pending_data_size = 0
        await super().close()

    async def drain(self) -> None:
        """Drains and closes the connection, as this process's own decision."""
        self.closed_by_process = True
        await super().drain()


def connection_closed(name: str, last_error: Exception | None) -> None:
    """Reports that the connection `name` was closed for good, not by this process."""
    reason = f"{type(last_error).__name__}: {last_error}" if last_error else "no error given"
    log.error(
        "NATS closed the connection of %s for good (%s); nats-py will not reconnect it: "
        "this process stops so that its supervisor starts it again",
        name,
        reason,
    )
    for listener in list(_listeners):
        listener(f"NATS closed the connection of {name} ({reason})")


@contextlib.contextmanager
def on_connection_closed(listener: Callable[[str], None]) -> Iterator[None]:
    """Calls `listener` with the reason while inside, whenever a connection is closed for good."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
