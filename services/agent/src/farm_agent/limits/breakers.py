"""The target origins' (host and port) circuit breakers, shared through `farm_breakers`.

Each agent keeps what it last read of an origin's breaker for a moment, so a task for
an origin whose breaker is closed costs no round trip; every change is a
compare-and-set on the entry's revision.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from farm_agent import metrics
from farm_agent.kv import (
    Contended,
    OwnBucket,
    Versioned,
    compare_and_set,
    open_own,
    read,
)
from farm_agent.limits.circuit import Admission, BreakerPolicy, Circuit, CircuitState, Outcome
from farm_agent.settings import AgentSettings
from farm_core.breakers import BREAKERS_BUCKET

log = logging.getLogger(__name__)

FRESH_SECONDS = 1.0
"""How long an agent trusts what it read of a breaker; another agent's change shows after it."""


@dataclass(frozen=True)
class _Seen:
    entry: Versioned[Circuit]
    at: float


class BreakerBoard:
    """Asks and tells the farm-wide breaker of an origin whether tasks may go there."""

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        settings: AgentSettings,
        nats_connected: Callable[[], bool] = lambda: True,
    ) -> "BreakerBoard":
        """The board on the farm's bucket (made again if deleted), with the breaker settings."""
        policy = BreakerPolicy(settings.breaker_failures, settings.breaker_cooldown_seconds)
        bucket = await open_own(js, BREAKERS_BUCKET, settings.nats_replicas, nats_connected)
        return cls(bucket, policy)

    def __init__(self, kv: KeyValue | OwnBucket, policy: BreakerPolicy) -> None:
        self._kv = kv if isinstance(kv, OwnBucket) else OwnBucket(kv)
        self._policy = policy
        self._seen: dict[str, _Seen] = {}

    async def admit(self, origin: str, trial_seconds: float) -> Admission:
        """Whether a task may go to `origin` now; a half-open breaker lets one trial through.

        When the bucket cannot be reached the task goes ahead: a breaker protects
        hosts, it must not stop the farm.
        """
        try:
            known = await self._known(origin)
            circuit = known.value or Circuit()
            if circuit.state is CircuitState.CLOSED:
                return Admission(allowed=True)
            admission = Admission(allowed=True)

            def ask(current: Circuit | None) -> Circuit:
                nonlocal admission
                after, admission = (current or Circuit()).admit(
                    time.time(), self._policy, trial_seconds
                )
                return after

            await self._change(origin, ask, known)
            return admission
        except (nats.errors.Error, TimeoutError, Contended) as error:
            log.warning("breaker of %s unreadable; letting the task through: %s", origin, error)
            return Admission(allowed=True)

    async def record(self, origin: str, admission: Admission, outcome: Outcome) -> None:
        """Tells the breaker of `origin` how a task it admitted went."""
        seen = self._seen.get(origin)
        fresh = seen is not None and time.monotonic() - seen.at < FRESH_SECONDS
        if fresh and seen is not None and not admission.is_trial:
            circuit = seen.entry.value or Circuit()
            if circuit.record(outcome, time.time(), self._policy) == circuit:
                return

        def tell(current: Circuit | None) -> Circuit:
            return (current or Circuit()).record(
                outcome, time.time(), self._policy, admission.trial_id
            )

        try:
            await self._change(origin, tell, seen.entry if fresh and seen else None)
        except (nats.errors.Error, TimeoutError, Contended) as error:
            log.warning(
                "could not tell the breaker of %s of a %s: %s", origin, outcome.value, error
            )

    async def _known(self, origin: str) -> Versioned[Circuit]:
        seen = self._seen.get(origin)
        if seen is not None and time.monotonic() - seen.at < FRESH_SECONDS:
            return seen.entry
        entry = await self._kv.run(lambda kv: read(kv, origin, Circuit.from_bytes))
        self._remember(origin, entry)
        return entry

    async def _change(
        self,
        origin: str,
        change: Callable[[Circuit | None], Circuit],
        known: Versioned[Circuit] | None,
    ) -> None:
        before: list[CircuitState] = []

        def tracked(current: Circuit | None) -> Circuit:
            before.append((current or Circuit()).state)
            return change(current)

        stored = await self._kv.run(
            lambda kv: compare_and_set(
                kv, origin, tracked, Circuit.from_bytes, Circuit.to_bytes, known
            )
        )
        self._remember(origin, stored)
        after = (stored.value or Circuit()).state
        if before and before[-1] is not after:
            log.info(
                "circuit breaker of %s: %s → %s",
                origin,
                before[-1].name.lower(),
                after.name.lower(),
            )
            metrics.circuit_transitions_total.labels(state=after.name.lower()).inc()

    def _remember(self, origin: str, entry: Versioned[Circuit]) -> None:
        self._seen[origin] = _Seen(entry, time.monotonic())
