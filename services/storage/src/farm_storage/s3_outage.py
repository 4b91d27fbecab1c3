"""What storage tells when S3 fails and answers again: a counter per call, a log line per outage.

Every failed call counts in `farm_storage_s3_failures_total`, by operation. The first
failure of an outage is logged at once (the operation, the bucket, the error); while
S3 keeps failing, at most one more line per `every_seconds` with the latest error;
the first call that S3 answers after failures ends the outage with one line.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

log = logging.getLogger(__name__)

OPERATIONS = ("PutObject", "GetObject", "RemoveObject", "RemoveObjects")
"""The S3 operations storage calls once it serves (the `operation` label's values)."""

s3_failures_total = Counter(
    "farm_storage_s3_failures_total",
    "S3 calls that failed (unreachable, timed out, busy or answering an error), by operation.",
    ["operation"],
)
for _operation in OPERATIONS:
    # Served from 0, so that a rate over the first failures is not lost.
    s3_failures_total.labels(_operation)


@dataclass
class _Outage:
    """When the failures since S3 last answered began, and when one was last logged."""

    started: float
    logged: float


class S3OutageLog:
    """Counts S3's failures and logs them rate-limited, and its recovery; one per bucket store."""

    def __init__(
        self, bucket: str, every_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._bucket = bucket
        self._every_seconds = every_seconds
        self._clock = clock
        self._outage: _Outage | None = None

    def failed(self, operation: str, error: BaseException) -> None:
        """Counts a failure of `operation`; logs it if the outage is new or a while has passed."""
        s3_failures_total.labels(operation).inc()
        now = self._clock()
        outage = self._outage
        if outage is None:
            self._outage = _Outage(started=now, logged=now)
            log.warning("S3 failed %s on bucket %r: %s", operation, self._bucket, error)
            return
        if now - outage.logged < self._every_seconds:
            return
        log.warning(
            "S3 still failing: %s on bucket %r: %s (since the outage began %.0f s ago; "
            "farm_storage_s3_failures_total counts the failures)",
            operation,
            self._bucket,
            error,
            now - outage.started,
        )
        outage.logged = now

    def answered(self) -> None:
        """Notes that S3 answered a call; ends an outage with a line saying how long it lasted."""
        outage = self._outage
        if outage is None:
            return
        self._outage = None
        log.info(
            "S3 answers again on bucket %r after failing for %.0f s",
            self._bucket,
            self._clock() - outage.started,
        )
