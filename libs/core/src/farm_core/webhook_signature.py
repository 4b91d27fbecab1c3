"""Signing a callback's body, and checking a signature, as docs/webhooks.md describes.

The signed text is "<timestamp>.<body>": the Unix time in seconds of the
`Farm-Timestamp` header, a dot, and the request's raw body. `Farm-Signature` holds
one or more comma-separated "v1=<hex HMAC-SHA256>" values, one per valid secret
(two for a while after a rotation). A receiver accepts the request when one value
matches one of its secrets and the timestamp is within its replay window.

That text leaves out `Farm-Event-Id`, which receivers drop repeats by, so
`Farm-Event-Signature` signs it too: the same "v1=<hex>" values over
"<event id>.<timestamp>.<body>" (the order of Standard Webhooks' signed content).
Farm-Signature stays as it was, for the receivers that check it.
"""

import hashlib
import hmac
from collections.abc import Iterable

TIMESTAMP_HEADER = "Farm-Timestamp"
"""The Unix time (whole seconds) the delivery was signed at."""
SIGNATURE_HEADER = "Farm-Signature"
"""Comma-separated "v1=<hex>" signatures, one per secret in use."""
TASK_ID_HEADER = "Farm-Task-Id"
"""The task the callback is about."""
ATTEMPT_HEADER = "Farm-Delivery-Attempt"
"""The delivery attempt's number, from 1; the same body may come again with another."""
EVENT_ID_HEADER = "Farm-Event-Id"
"""Which end of the task the delivery reports: the same on every attempt of it."""
EVENT_SIGNATURE_HEADER = "Farm-Event-Signature"
"""Comma-separated "v1=<hex>" signatures of event id, timestamp and body, one per secret."""


def event_id(task_id: str, requeues: int) -> str:
    """The Farm-Event-Id of the task's end after `requeues` requeues: `<task id>.<n>`, n from 1."""
    return f"{task_id}.{requeues + 1}"


SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
"""The replay window: a signature older (or newer) than this is refused."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of "<timestamp>.<body>" keyed with `secret`'s UTF-8 bytes."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    """The Farm-Signature value: "v1=<hex>" for each secret, comma-separated."""
    return ",".join(f"{SCHEME}={signature(secret, timestamp, body)}" for secret in secrets)


def event_signature(secret: str, event: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of "<event id>.<timestamp>.<body>" keyed with `secret`'s bytes."""
    signed = f"{event}.{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def event_signature_header(secrets: Iterable[str], event: str, timestamp: int, body: bytes) -> str:
    """The Farm-Event-Signature value: "v1=<hex>" for each secret, comma-separated."""
    return ",".join(
        f"{SCHEME}={event_signature(secret, event, timestamp, body)}" for secret in secrets
    )


def verify(
    secret: str,
    header: str,
    timestamp_header: str,
    body: bytes,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether the Farm-Signature `header` holds a valid v1 signature of `body` by `secret`.

    False as well when the Farm-Timestamp is not a number or is more than
    `tolerance_seconds` away from `now` (a replayed or delayed request).
    """
    timestamp = _fresh_timestamp(timestamp_header, now, tolerance_seconds)
    if timestamp is None:
        return False
    return _offers(header, signature(secret, timestamp, body))


def verify_event(
    secret: str,
    header: str,
    event: str,
    timestamp_header: str,
    body: bytes,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether the Farm-Event-Signature `header` signs `event`, the timestamp and `body`.

    False as well for a timestamp outside the replay window, as `verify`.
    """
    timestamp = _fresh_timestamp(timestamp_header, now, tolerance_seconds)
    if timestamp is None:
        return False
    return _offers(header, event_signature(secret, event, timestamp, body))


def _fresh_timestamp(header: str, now: float, tolerance_seconds: float) -> int | None:
    """The timestamp `header` names, if it is a number within the replay window of `now`."""
    try:
        timestamp = int(header)
    except ValueError:
        return None
    return timestamp if abs(now - timestamp) <= tolerance_seconds else None


def _offers(header: str, expected: str) -> bool:
    """Whether a "v1=<hex>" value of `header` is `expected`, compared in constant time."""
    offered = (part.strip().partition("=") for part in header.split(","))
    return any(
        scheme == SCHEME and hmac.compare_digest(value, expected) for scheme, _, value in offered
    )
