"""Why a task has ended, as the scheduler marks it in the bucket CANCEL_BUCKET.

The scheduler marks a task there when it ends while work on it may still be out
there: cancelled, failed by a delivery that never started it (its attempts used
up, its deadline passed) while an earlier attempt may still run, or ended by an
attempt whose message was delivered again meanwhile (the redelivery waits, queued).
The key is the task id, the value the reason (`CANCELLED`, `SUCCEEDED`,
`FAILED: <error code>`). Agents ack a
delivery of a marked task unrun; storage refuses its uploads, naming the reason.
"""

CANCELLED = "CANCELLED"
"""The reason of a task cancelled by its user."""


SUCCEEDED = "SUCCEEDED"
"""The reason of a task that succeeded while a redelivery of it was queued."""


def failed(error_code: str) -> str:
    """The reason of a task that ended FAILED with `error_code`."""
    return f"FAILED: {error_code}"


def mark(reason: str) -> bytes:
    """The bucket value that says `reason`."""
    return reason.encode()


def reason_of(value: bytes) -> str:
    """The reason a bucket value says; an empty value (a scheduler before reasons) is a cancel."""
    return value.decode(errors="replace") or CANCELLED
