"""The loop that delivers due callbacks, a bounded number at once, apart from the task pipeline.

Each round looks for final tasks whose callback is due (callbacks.rows), claims
each for the length of one delivery and sends it in a task of its own; the loop
never waits for a receiver. What a delivery ends with is written with its attempt:
delivered, due again after a doubling wait, or given up when the retry window has
closed or the address is refused. Pending callbacks live in SQL, so a scheduler
that stops (or dies) mid-retry leaves them to the next one.
"""

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import json_format
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_core.cancel import cancel_and_wait
from farm_core.db import utcnow
from farm_core.logs import log_context
from farm_core.periodic import Periodic
from farm_core.trace_context import calling_out
from farm_core.webhook_signature import (
    ATTEMPT_HEADER,
    EVENT_ID_HEADER,
    EVENT_SIGNATURE_HEADER,
    SIGNATURE_HEADER,
    TASK_ID_HEADER,
    TIMESTAMP_HEADER,
    event_id,
    event_signature_header,
    signature_header,
)
from farm_scheduler.callbacks.attempts import CallbackAttempt, RetryPolicy
from farm_scheduler.callbacks.metrics import record_delivery
from farm_scheduler.callbacks.rows import claim_callback, due_callbacks, record_attempt
from farm_scheduler.callbacks.secrets import WebhookSecrets
from farm_scheduler.callbacks.sender import CallbackSender, Delivery
from farm_scheduler.lifecycle import is_final
from farm_scheduler.records import TaskRecord
from farm_scheduler.task_rows import read_task

log = logging.getLogger(__name__)

LEASE_MARGIN_SECONDS = 5.0
"""A claim lasts one delivery's timeout and this much more (reading, signing, writing)."""
USER_AGENT = "browserfarm-callbacks/1"


def callback_body(record: TaskRecord) -> bytes:
    """The task's JSON as GetTask answers it over HTTP (every field, camelCase names)."""
    text = json_format.MessageToJson(
        record.to_proto(), indent=None, always_print_fields_with_no_presence=True
    )
    return text.encode()


def failures_in_a_row(attempts: tuple[CallbackAttempt, ...]) -> int:
    """How many of the latest attempts failed, back to the latest delivered one."""
    count = 0
    for attempt in reversed(attempts):
        if attempt.delivered:
            break
        count += 1
    return count


@dataclass(frozen=True)
class _Round:
    """One look for due callbacks: how many were due (up to the free places), how many started."""

    found: int
    started: int


class CallbackDeliverer:
    """Finds due callbacks every `poll_seconds` and delivers up to `concurrency` at once."""

    def __init__(
        self,
        engine: AsyncEngine,
        secrets: WebhookSecrets,
        sender: CallbackSender,
        retry: RetryPolicy,
        *,
        concurrency: int,
        poll_seconds: float,
        timeout_seconds: float,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._secrets = secrets
        self._sender = sender
        self._retry = retry
        self._concurrency = concurrency
        self._lease = dt.timedelta(seconds=timeout_seconds + LEASE_MARGIN_SECONDS)
        self._clock = clock
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._loop = Periodic("callbacks", self.deliver_due, poll_seconds, first_round_at_once=True)

    def start(self) -> None:
        """Starts looking for due callbacks."""
        self._loop.start()

    async def stop(self, grace_seconds: float) -> None:
        """Stops looking; lets deliveries in flight end for up to `grace_seconds`.

        A delivery cut short is due again when its claim runs out.
        """
        await self._loop.stop()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight.values()), timeout=grace_seconds)
        for task_id, delivery in list(self._in_flight.items()):
            await cancel_and_wait(delivery, f"the callback of task {task_id}")
        await self._sender.close()

    async def deliver_due(self) -> int:
        """Claims due callbacks for the free places and starts them; returns how many it started.

        While each look finds as many due as there were places (a batch's tasks ending
        together), it looks again as soon as a place frees up rather than after the
        poll's pause, so a backlog is delivered at the receivers' pace, not
        `concurrency` per poll.
        """
        started = 0
        while not self._loop.stopping:
            free = self._concurrency - len(self._in_flight)
            if free > 0:
                due = await self._start_due(free)
                started += due.started
                if due.found < free:
                    break
            if self._in_flight:
                await asyncio.wait(
                    set(self._in_flight.values()), return_when=asyncio.FIRST_COMPLETED
                )
        return started

    async def _start_due(self, free: int) -> "_Round":
        """Claims up to `free` due callbacks and starts a delivery for each it claimed."""
        now = self._clock()
        started = 0
        async with self._engine.begin() as connection:
            due = await due_callbacks(connection, now, free)
        for task_id in due:
            if task_id in self._in_flight:
                continue
            async with self._engine.begin() as connection:
                if not await claim_callback(connection, task_id, now, now + self._lease):
                    continue
            delivery = asyncio.create_task(self._deliver(task_id), name=f"callback-{task_id}")
            self._in_flight[task_id] = delivery
            delivery.add_done_callback(self._forget)
            started += 1
        return _Round(found=len(due), started=started)

    def _forget(self, delivery: "asyncio.Task[None]") -> None:
        """Drops an ended delivery from the ones in flight."""
        self._in_flight.pop(delivery.get_name().removeprefix("callback-"), None)

    async def wait_in_flight(self) -> None:
        """Waits until the deliveries started so far have ended (for tests and stops)."""
        while self._in_flight:
            await asyncio.wait(set(self._in_flight.values()))

    async def _deliver(self, task_id: str) -> None:
        with log_context(task_id=task_id):
            try:
                await self._deliver_claimed(task_id)
            except Exception:
                # The claim runs out and the callback is due again.
                log.exception("delivering the callback of task %s failed", task_id)

    async def _deliver_claimed(self, task_id: str) -> None:
        async with self._engine.connect() as connection:
            record = await read_task(connection, task_id, None)
        if record is None or not record.callback_pending or not is_final(record.state.status):
            return
        now = self._clock()
        number = len(record.callback_attempts) + 1
        body = callback_body(record)
        signed_at = int(time.time())
        secret = await self._secrets.get(record.tenant, now)
        # Each end (a requeued task ends again) is one event, however often it is sent.
        event = event_id(record.id, record.state.requeues)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: str(signed_at),
            SIGNATURE_HEADER: signature_header(secret.signing(now), signed_at, body),
            TASK_ID_HEADER: record.id,
            ATTEMPT_HEADER: str(number),
            EVENT_ID_HEADER: event,
            # Signs the event id too, which receivers drop repeats by (Farm-Signature
            # does not, and stays as it was for the receivers that check it).
            EVENT_SIGNATURE_HEADER: event_signature_header(
                secret.signing(now), event, signed_at, body
            ),
        }
        attributes: dict[str, AttributeValue] = {
            "farm.task_id": record.id,
            "farm.callback.attempt": number,
        }
        # In the task's trace (its stored traceparent); the receiver may continue it.
        with calling_out("task.callback", parent=record.trace_parent, attributes=attributes) as (
            span,
            trace_headers,
        ):
            started = time.monotonic()
            delivery = await self._sender.send(
                record.spec.callback_url, body, {**headers, **trace_headers}
            )
            attempt_seconds = time.monotonic() - started
            if delivery.http_status:
                span.set_attribute("http.response.status_code", delivery.http_status)
            if delivery.error:
                span.set_status(Status(StatusCode.ERROR, delivery.error))
            await self._record(record, number, now, delivery, attempt_seconds)

    async def _record(
        self,
        record: TaskRecord,
        number: int,
        now: dt.datetime,
        delivery: Delivery,
        attempt_seconds: float,
    ) -> None:
        """Writes how the delivery ended, counts it and logs it."""
        task_id = record.id
        attempt = CallbackAttempt(number, now, delivery.http_status, delivery.error)
        next_time = None
        if not attempt.delivered and not delivery.permanent:
            failures = failures_in_a_row((*record.callback_attempts, attempt))
            finished = record.state.finish_time or now
            next_time = self._retry.next_time(failures, finished, self._clock())
        async with self._engine.begin() as connection:
            await record_attempt(connection, task_id, record.state.requeues, attempt, next_time)
        record_delivery(
            attempt, next_time is not None, attempt_seconds, record.state.finish_time, self._clock()
        )
        if attempt.delivered:
            log.info("delivered the callback of task %s (attempt %d)", task_id, number)
        elif next_time is None:
            log.warning("gave up the callback of task %s: %s", task_id, attempt.error)
        else:
            log.info(
                "callback of task %s failed (%s); again at %s", task_id, attempt.error, next_time
            )
