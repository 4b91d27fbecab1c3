"""What storage logs when S3 fails and answers again: a line per outage, not per call.

The first failure of an outage is logged at once (the operation, the bucket, the
error); later ones at most once per `every_seconds`, with how many failed since;
the first call that S3 answers after failures ends the outage with one line.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class _Outage:
    """Failures since S3 last answered."""

    started: float
    failures: int = 1
    logged: float = 0.0
    unlogged: int = 0


class S3OutageLog:
    """Logs S3's failures rate-limited, and its recovery; one per bucket store."""

    def __init__(
        self, bucket: str, every_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._bucket = bucket
        self._every_seconds = every_seconds
        self._clock = clock
        self._outage: _Outage | None = None

    def failed(self, operation: str, error: BaseException) -> None:
        """Notes that S3 failed `operation`; logs it if the outage is new or a while has passed."""
        now = self._clock()
        outage = self._outage
        if outage is None:
            self._outage = _Outage(started=now, logged=now)
            log.warning("S3 failed %s on bucket %r: %s", operation, self._bucket, error)
            return
        outage.failures += 1
        outage.unlogged += 1
        if now - outage.logged < self._every_seconds:
            return
        log.warning(
            "S3 still failing: %s on bucket %r: %s (%d more failure(s) in the last %.0f s, "
            "%d since the outage began %.0f s ago)",
            operation,
            self._bucket,
            error,
            outage.unlogged,
            now - outage.logged,
            outage.failures,
            now - outage.started,
        )
        outage.logged, outage.unlogged = now, 0

    def answered(self) -> None:
        """Notes that S3 answered a call; ends an outage with a line saying how long it lasted."""
        outage = self._outage
        if outage is None:
            return
        self._outage = None
        log.info(
            "S3 answers again on bucket %r after %d failure(s) over %.0f s",
            self._bucket,
            outage.failures,
            self._clock() - outage.started,
        )
