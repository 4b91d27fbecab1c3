"""Pulls tasks from JetStream by weighted priority and runs up to `concurrency` of them at once.

Each (region, priority) has one durable pull consumer, named by
`farm_core.queue.consumer_name` and shared by every agent of that region. A core
subscription to the same subjects is the doorbell that says which queue just got
work, so an idle agent waits instead of polling; queues are still checked every
`poll_seconds` for redelivered tasks.

Each fetch is one pull (`work.consumers`), without waiting when only the poll
suggests work. A task this agent hands back with a delay (a retry, a wait) rings
its queue's bell when the delay is over.

JetStream redelivers without limit: attempts are counted and bounded by the agent
(each task's maxAttempts), and deliveries that only waited do not count.

On drain the fetch loop stops at once, or, cancelled past the grace, leaves a
task it held unstarted to JetStream's redelivery after the ack wait.
"""

import asyncio
import contextlib
import functools
import itertools
import logging
import time

import nats.errors
from google.protobuf.message import DecodeError
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from farm.queue.v1 import queue_pb2
from farm_agent.limits.attempt_limits import AttemptLimits
from farm_agent.places import Places
from farm_agent.saved.client import SavedState
from farm_agent.saved.keeper import CaptureKeeper
from farm_agent.settings import AgentSettings
from farm_agent.work.attempt import StopReason, TaskAttempt
from farm_agent.work.attempt_tools import AttemptTools, QueueBookkeeping, Reporting, SpecRunner
from farm_agent.work.bells import LaterBells
from farm_agent.work.consumers import REPLY_MARGIN_SECONDS, QueueConsumer
from farm_agent.work.endings import RecentEnds
from farm_agent.work.events import EventReporter
from farm_agent.work.lapses import in_progress_interval
from farm_agent.work.priorities import PRECEDENCE, PriorityChooser
from farm_agent.work.uploader import ArtifactUploader
from farm_agent.work.waits import WaitLedger, WaitReason, hand_back_unstarted
from farm_core.cancel import cancel_and_wait
from farm_core.logs import log_context
from farm_core.nats_start import NatsStart
from farm_core.queue import (
    ANY_REGION,
    CANCEL_SUBJECTS,
    Priority,
    cancelled_task_id,
    consumer_name,
    find_work_streams,
    region_task_subjects,
)

log = logging.getLogger(__name__)

HAND_BACK_SECONDS = 5.0
"""How long drain waits for stopped tasks to be handed back after the grace period."""


class WorkIntake:
    """Fetches tasks for the agent's region and `any`, runs them, and drains on shutdown."""

    def __init__(
        self,
        settings: AgentSettings,
        runner: SpecRunner,
        uploader: ArtifactUploader,
        places: Places | None = None,
        saved: SavedState | None = None,
    ) -> None:
        self._settings = settings
        self._places = places or Places(settings.concurrency)
        self._runner = runner
        # Without `saved`, a task that compares a screenshot or uses a profile fails (INTERNAL).
        self._keeper = CaptureKeeper(uploader, saved)
        self._chooser = PriorityChooser(settings.priority_weights)
        self._regions = [ANY_REGION]
        if settings.region and settings.region != ANY_REGION:
            self._regions.insert(0, settings.region)
        self._nc: Client | None = None
        self._queues: dict[Priority, list[QueueConsumer]] = {
            priority: [] for priority in PRECEDENCE
        }
        self._subscriptions: list[Subscription] = []
        self._running: dict[asyncio.Task[None], TaskAttempt] = {}
        self._ended = RecentEnds(settings.heartbeat_seconds, settings.holder_lost_seconds)
        self._changed = asyncio.Condition()
        self._stopping = False
        self._fetching: asyncio.Task[None] | None = None
        self._last_poll = time.monotonic()
        self._waits: WaitLedger | None = None
        self._bells = LaterBells(self._ring)

    @property
    def running_tasks(self) -> list[str]:
        """Ids of the tasks being worked on now."""
        return [attempt.task_id for attempt in self._running.values()]

    @property
    def ending_tasks(self) -> list[str]:
        """Ids of the tasks whose attempt here ended lately (endings.py)."""
        return self._ended.listed

    def _attempts_of(self, task_id: str) -> int:
        return sum(attempt.task_id == task_id for attempt in self._running.values())

    @property
    def draining(self) -> bool:
        """Whether the intake has stopped taking work."""
        return self._stopping

    @property
    def connection(self) -> Client:
        """The NATS connection (once started)."""
        if self._nc is None:
            raise RuntimeError("the intake is not started")
        return self._nc

    async def start(self, nats_start: NatsStart | None = None) -> None:
        """Connects to NATS, binds the consumers and starts fetching.

        NATS gets until `nats_start`'s deadline (by default FARM_NATS_START_TIMEOUT_SECONDS
        from now) to answer the connect and each set-up request.
        """
        settings = self._settings
        interval = in_progress_interval(settings.ack_wait_seconds, settings.in_progress_seconds)
        if interval < settings.in_progress_seconds:
            log.warning(
                "in-progress acks go every %.1f s, not FARM_AGENT_IN_PROGRESS_SECONDS=%.1f: "
                "at most a third of FARM_AGENT_ACK_WAIT_SECONDS=%.1f",
                interval,
                settings.in_progress_seconds,
                settings.ack_wait_seconds,
            )
        start = nats_start or NatsStart("agent", settings.nats_start_timeout_seconds)
        nc = self._nc = await start.connect(settings.nats(), name=f"farm-agent-{settings.id}")
        js = nc.jetstream(timeout=settings.nats_request_timeout_seconds)
        replicas = settings.nats_replicas
        await start.set_up(
            nc,
            "find the streams FARM_TASKS and FARM_EVENTS (the scheduler makes them)",
            lambda: find_work_streams(js),
        )
        self._waits = await start.set_up(
            nc,
            "open the bucket of task waits",
            lambda: WaitLedger.open(js, replicas, lambda: nc.is_connected),
        )
        tools = AttemptTools(
            runner=self._runner,
            limits=await start.set_up(
                nc,
                "open the buckets of breakers and host and tenant slots",
                lambda: AttemptLimits.open(js, settings, lambda: nc.is_connected),
            ),
            reporting=Reporting(
                keeper=self._keeper,
                reporter=EventReporter(js, settings.id, nc.max_payload),
            ),
            bookkeeping=await QueueBookkeeping.open(
                start, nc, settings, self._waits, self._ring_later, self._attempts_of, self._ended
            ),
            settings=settings,
        )
        for region in self._regions:
            for priority in PRECEDENCE:
                queue = await start.set_up(
                    nc,
                    f"bind the consumer {consumer_name(region, priority)} of FARM_TASKS",
                    functools.partial(
                        QueueConsumer.bind, nc, js, region, priority, settings.ack_wait_seconds
                    ),
                )
                self._subscriptions.append(queue.inbox)
                self._queues[priority].append(queue)
            self._subscriptions.append(
                await nc.subscribe(region_task_subjects(region), cb=self._on_new_task)
            )
        self._subscriptions.append(await self._nc.subscribe(CANCEL_SUBJECTS, cb=self._on_cancel))
        self._fetching = asyncio.create_task(self._fetch_loop(tools), name="agent-fetch")
        log.info(
            "pulling tasks of region(s) %s with weights high,normal,low = %s, %d at a time",
            ",".join(self._regions),
            ",".join(map(str, settings.priority_weights)),
            settings.concurrency,
        )

    async def drain(self, grace_seconds: float) -> None:
        """Stops fetching, lets running tasks end within the grace, hands the rest back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_seconds
        async with self._changed:
            self._stopping = True
            self._changed.notify_all()
        await self._places.notify()
        if self._fetching is not None:
            await self._stop_fetching(self._fetching, grace_seconds)
        running = dict(self._running)
        if not running:
            log.info("drained: no task was running")
            return
        _, late = await asyncio.wait(running, timeout=max(deadline - loop.time(), 0))
        for task in late:
            running[task].stop(StopReason.SHUTDOWN)
        if late:
            await asyncio.wait(late, timeout=HAND_BACK_SECONDS)
        log.info(
            "drained: %d task(s) finished within %g s, %d handed back for redelivery",
            len(running) - len(late),
            grace_seconds,
            len(late),
        )

    async def _stop_fetching(self, fetching: asyncio.Task[None], grace_seconds: float) -> None:
        """Waits for the fetch loop to see the stop, within the grace; then cancels it."""
        bound = grace_seconds
        if self._nc is not None and self._nc.is_connected:
            # A pull's answer comes within its expiry; cancelled, nobody would read it.
            bound = max(bound, self._settings.fetch_wait_seconds + REPLY_MARGIN_SECONDS)
        await asyncio.wait({fetching}, timeout=bound)
        if not fetching.done():
            log.warning(
                "fetching did not stop within %g s: cancelled; a task it held unstarted "
                "comes again after the ack wait",
                bound,
            )
        await cancel_and_wait(fetching, "the agent's fetch loop")

    async def close(self) -> None:
        """Stops everything still running and closes the NATS connection."""
        if not self._stopping:
            await self.drain(0)
        self._bells.call_off()
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.wait(list(self._running), timeout=HAND_BACK_SECONDS)
        if self._nc is not None and not self._nc.is_closed:
            # Flush first, so the last acks and naks reach the server.
            try:
                await self._nc.flush(timeout=int(HAND_BACK_SECONDS))
            except (nats.errors.Error, TimeoutError) as error:
                log.warning("acks and naks may be lost on close: %s", error)
            await self._nc.close()

    async def _fetch_loop(self, tools: AttemptTools) -> None:
        places = self._places
        while True:
            await places.wait_for(lambda: self._stopping or places.task_may_start())
            message = None if self._stopping else await self._next_message_or_none()
            if message is None:
                if self._stopping:
                    return
                continue
            if self._stopping:
                await hand_back_unstarted(message, WaitReason.DRAINING, self._waits)
                return
            if not places.try_take_for_task():
                # A session took the place while the task was on its way.
                await hand_back_unstarted(message, WaitReason.NO_PLACE, self._waits)
                continue
            attempt = TaskAttempt(message, tools)
            task = asyncio.create_task(self._run(attempt), name=f"attempt-{attempt.task_id}")
            self._running[task] = attempt

    async def _run(self, attempt: TaskAttempt) -> None:
        try:
            with log_context(task_id=attempt.task_id):
                await attempt.run()
        except Exception:
            log.exception("task %s: attempt failed unexpectedly", attempt.task_id)
        finally:
            async with self._changed:
                this_task = asyncio.current_task()
                if this_task is not None:
                    self._running.pop(this_task, None)
                self._ended.note(attempt.task_id, end_mark_due=attempt.end_mark_due)
                self._changed.notify_all()
            await self._places.give_back(session=False)

    async def _next_message_or_none(self) -> Msg | None:
        """The next message; None after an unexpected error, so the loop lives on."""
        try:
            return await self._next_message()
        except Exception:
            log.exception("fetching tasks failed; trying again shortly")
            await self._pause()
            return None

    async def _next_message(self) -> Msg | None:
        """The next task by weighted priority; waits for work; None once stopping."""
        while not self._stopping:
            if time.monotonic() - self._last_poll >= self._settings.poll_seconds:
                self._mark_all_maybe_busy()
            with_work = {priority for priority, queues in self._queues.items() if _any_work(queues)}
            priority = self._chooser.pick(with_work)
            if priority is None:
                await self._wait_for_work()
                continue
            for queue in self._queues[priority]:
                if queue.maybe_has_work:
                    message = await self._fetch(queue)
                    if message is not None:
                        return message
        return None

    async def _fetch(self, queue: QueueConsumer) -> Msg | None:
        rings = queue.rings
        try:
            message = await queue.pull(self._settings.fetch_wait_seconds)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("fetching from %s failed: %s", queue.name, error)
            await self._pause()
            return None
        if message is not None:
            # JetStream says how many more wait behind this one: none, and the flag can go.
            if message.metadata.num_pending == 0 and queue.rings == rings:
                queue.maybe_has_work = False
            else:
                queue.probe_only = False
            return message
        # A task that rang during the fetch keeps the flag.
        if queue.rings == rings:
            queue.maybe_has_work = False
        return None

    async def _pause(self) -> None:
        """Waits a fetch's wait before trying again after a failure; a drain ends it at once."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.fetch_wait_seconds):
                    await self._changed.wait_for(lambda: self._stopping)

    async def _wait_for_work(self) -> None:
        """Waits for a new-task signal, a stop, or the next poll of all queues."""
        async with self._changed:
            try:
                async with asyncio.timeout(self._settings.poll_seconds):
                    await self._changed.wait_for(
                        lambda: (
                            self._stopping
                            or any(_any_work(queues) for queues in self._queues.values())
                        )
                    )
            except TimeoutError:
                self._mark_all_maybe_busy()

    def _mark_all_maybe_busy(self) -> None:
        """Redeliveries ring no bell: every queue is worth a look now and then."""
        self._last_poll = time.monotonic()
        for queues in self._queues.values():
            for queue in queues:
                if not queue.maybe_has_work:
                    queue.maybe_has_work = True
                    queue.probe_only = True

    async def _on_new_task(self, message: Msg) -> None:
        await self._ring(message.subject)

    def _ring_later(self, subject: str, delay: float) -> None:
        """Rings the bell of the queue of `subject` once a task handed back with `delay` is due."""
        if not self._stopping:
            self._bells.ring_later(subject, delay)

    async def _ring(self, subject: str) -> None:
        """Marks the queue of a task subject as having work and wakes the fetch loop."""
        queues = itertools.chain.from_iterable(self._queues.values())
        rung = [queue for queue in queues if queue.subject == subject]
        if not rung:
            return
        async with self._changed:
            for queue in rung:
                queue.rings += 1
                queue.maybe_has_work = True
                queue.probe_only = False
            self._changed.notify_all()

    async def _on_cancel(self, message: Msg) -> None:
        task_id = ""
        with contextlib.suppress(DecodeError):
            task_id = queue_pb2.CancelNotice.FromString(message.data).task_id
        task_id = task_id or cancelled_task_id(message.subject)
        self._ended.mark_seen(task_id)
        for attempt in self._running.values():
            if attempt.task_id == task_id:
                with log_context(task_id=task_id):
                    log.info("cancel notice for running task %s: stopping it", task_id)
                attempt.stop(StopReason.CANCELLED)


def _any_work(queues: list[QueueConsumer]) -> bool:
    return any(queue.maybe_has_work for queue in queues)
