"""What a NATS message weighs as the server counts it against its max_payload."""

from collections.abc import Mapping


def header_bytes(headers: Mapping[str, str] | None) -> int:
    """Bytes `headers` add to a message: the `NATS/1.0` block with a line each.

    An empty mapping still sends the block; only None sends none.

    The server counts them in max_payload and closes for good the connection of a
    client that sends more; nats-py checks the payload alone.
    """
    if headers is None:
        return 0
    lines = sum(len(name.encode()) + len(value.encode()) + 4 for name, value in headers.items())
    return len(b"NATS/1.0\r\n\r\n") + lines
