"""The callbacks' Prometheus metrics: deliveries, failed attempts, give-ups and their times."""

import datetime as dt

from prometheus_client import Counter, Histogram

from farm_core.metric_series import start_at_zero
from farm_scheduler.callbacks.attempts import CallbackAttempt

_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

callbacks_delivered = Counter(
    "farm_callbacks_delivered_total", "Callbacks a receiver accepted (answered 2xx)."
)
callback_attempts_failed = Counter(
    "farm_callback_attempts_failed_total",
    "Callback attempts that failed (no answer, or not 2xx), by whether they are retried.",
    ["retried"],
)
start_at_zero(callback_attempts_failed, retried=("true", "false"))
callbacks_given_up = Counter(
    "farm_callbacks_given_up_total",
    "Callbacks given up: the retry window closed, or the address is refused.",
)
callback_attempt_seconds = Histogram(
    "farm_callback_attempt_seconds",
    "One delivery attempt: the POST until the receiver's answer (or the failure).",
    buckets=_SECONDS_BUCKETS,
)
callback_delivery_seconds = Histogram(
    "farm_callback_delivery_seconds",
    "The task's end until its callback was delivered, retries included.",
    buckets=_SECONDS_BUCKETS,
)


def record_delivery(
    attempt: CallbackAttempt,
    retried: bool,
    attempt_seconds: float,
    finish_time: dt.datetime | None,
    now: dt.datetime,
) -> None:
    """Counts one delivery attempt's outcome and times it (the task ended at `finish_time`)."""
    callback_attempt_seconds.observe(attempt_seconds)
    if attempt.delivered:
        callbacks_delivered.inc()
        if finish_time is not None:
            ended = (now - finish_time).total_seconds()
            callback_delivery_seconds.observe(max(0.0, ended))
        return
    callback_attempts_failed.labels(retried=str(retried).lower()).inc()
    if not retried:
        callbacks_given_up.inc()
