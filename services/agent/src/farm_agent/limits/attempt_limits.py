"""The farm-wide limits an attempt passes before its browser starts, in the order it meets them.

First its tenant's running limit (the WorkItem's `tenant_max_running`), then the
circuit breaker of its target's host and port, then the host's concurrency and rate. Each answers at
once: a lease or an admission, or how long to wait before asking again. What the
attempt does with a refusal (wait, or fail) is the attempt's call.
"""

from collections.abc import Callable

from nats.js import JetStreamContext

from farm_agent.kv import HOST_SLOTS_BUCKET, TENANT_SLOTS_BUCKET, open_own, tenant_key
from farm_agent.limits.breakers import BreakerBoard
from farm_agent.limits.circuit import Admission, Outcome
from farm_agent.limits.leases import Busy, Lease, SlotLimiter, Unreadable
from farm_agent.limits.slots import SlotLimits
from farm_agent.settings import AgentSettings

TRIAL_MARGIN_SECONDS = 10.0
"""A trial is given up for lost (its agent died) after its time limit and this margin."""


class AttemptLimits:
    """Asks the farm's breakers and slot buckets whether an attempt may go ahead now."""

    @classmethod
    async def open(
        cls,
        js: JetStreamContext,
        settings: AgentSettings,
        nats_connected: Callable[[], bool] = lambda: True,
    ) -> "AttemptLimits":
        """The limits on the farm's buckets, with the agent's settings.

        `nats_connected` tells a NATS outage (a wait) from a bucket that fails to answer.
        """
        replicas = settings.nats_replicas
        return cls(
            breakers=await BreakerBoard.open(js, settings, nats_connected),
            host_limits=SlotLimiter(
                await open_own(js, HOST_SLOTS_BUCKET, replicas, nats_connected),
                "host",
                bucket=HOST_SLOTS_BUCKET,
                nats_connected=nats_connected,
            ),
            tenant_limits=SlotLimiter(
                await open_own(js, TENANT_SLOTS_BUCKET, replicas, nats_connected),
                "tenant",
                bucket=TENANT_SLOTS_BUCKET,
                nats_connected=nats_connected,
            ),
            settings=settings,
        )

    def __init__(
        self,
        breakers: BreakerBoard,
        host_limits: SlotLimiter,
        tenant_limits: SlotLimiter,
        settings: AgentSettings,
    ) -> None:
        self._breakers = breakers
        self._host_limits = host_limits
        self._tenant_limits = tenant_limits
        self._settings = settings

    async def tenant_slot(self, tenant: str, max_running: int) -> Lease | Busy | Unreadable | None:
        """One of the tenant's running slots; Busy: it runs its limit; None: it has no limit.

        Unreadable: its entry could not be read (the attempt fails, it does not wait).
        """
        key = tenant_key(tenant)
        if not key or max_running <= 0:
            return None
        limits = SlotLimits(max_running, None, self._settings.tenant_lease_seconds)
        # No waiting in the agent: a tenant's backlog must not fill the agents' places.
        return await self._tenant_limits.acquire(key, limits, 0)

    async def admit_to_origin(self, origin: str, timeout_ms: int) -> Admission:
        """Whether the breaker of `origin` lets an attempt of `timeout_ms` through now.

        With no host (`kv.origin_key` of the task's URL is "") there is no breaker to ask.
        """
        if not origin:
            return Admission(allowed=True)
        trial_seconds = timeout_ms / 1000 + self._settings.close_timeout_seconds
        return await self._breakers.admit(origin, trial_seconds + TRIAL_MARGIN_SECONDS)

    async def host_slot(self, host: str) -> Lease | Busy | Unreadable | None:
        """One of the host's slots; Busy: not within host_wait_seconds; None: no host to limit.

        Unreadable: its entry could not be read (the attempt fails, it does not wait).
        """
        if not host:
            return None
        settings = self._settings
        limits = SlotLimits(
            settings.host_max_concurrency, settings.host_max_rate, settings.host_lease_seconds
        )
        return await self._host_limits.acquire(host, limits, settings.host_wait_seconds)

    async def record(self, origin: str, admission: Admission, outcome: Outcome) -> None:
        """Tells the breaker of `origin` (`kv.origin_key`) how an attempt it admitted went."""
        if origin:
            await self._breakers.record(origin, admission, outcome)
