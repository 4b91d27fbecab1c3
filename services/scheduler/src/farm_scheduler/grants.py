"""The grants the scheduler hands out with tasks and sessions, and checks on agents' events.

A task's WorkItem is published once and redelivered as is (to any agent, for each
attempt), so its grant cannot name an attempt and must last as long as the message
can: the task stream's max age, cut short by the task's deadline, plus a grace for
the last attempt's run and upload. A session's grant lasts until its expiry plus
the grace. The tasks published together (a batch, a group of creates) get their
grants from one Merkle tree with one signature (farm_core.grants), unless
`trees` is off.
"""

import datetime as dt
import functools
import time
from collections.abc import Sequence

from farm_core.errors import PermissionDenied
from farm_core.grants import GrantSigner, UploadGrant
from farm_core.queue import QueueLimits
from farm_scheduler.records import TaskRecord

VERIFIED_GRANTS_KEPT = 4096
"""How many checked grants are remembered: every event of a task carries the same one."""


class Grants:
    """Signs tasks' and sessions' upload grants and checks the grant on an agent's event."""

    def __init__(
        self,
        signer: GrantSigner,
        grace_seconds: float,
        task_max_age_seconds: float = QueueLimits().task_max_age_seconds,
        trees: bool = True,
    ) -> None:
        self._signer = signer
        self._trees = trees
        self._grace_seconds = grace_seconds
        self._task_max_age_seconds = task_max_age_seconds
        # Grants whose signature held, by token (a refusal is not kept): a task's later
        # events skip the Ed25519 check; their expiry is still checked.
        self._verified = functools.lru_cache(maxsize=VERIFIED_GRANTS_KEPT)(
            functools.partial(signer.read, field="grant")
        )

    def for_task(self, record: TaskRecord, now: dt.datetime) -> str:
        """The grant of `record`'s WorkItem, published at `now`."""
        return self._signer.sign(*self._task_grant(record, now))

    def for_tasks(self, records: Sequence[TaskRecord], now: dt.datetime) -> list[str]:
        """The grants of `records`' WorkItems, published together at `now`, in their order."""
        if not self._trees:
            return [self.for_task(record, now) for record in records]
        # The records of a batch share their specs: each spec's lifetime is worked out once.
        # id(): the records hold their specs, so no other spec takes the id meanwhile.
        lifetimes: dict[int, float] = {}
        grants = []
        for record in records:
            lifetime = lifetimes.get(id(record.spec))
            if lifetime is None:
                lifetime = lifetimes[id(record.spec)] = self._lifetime(record, now)
            grant = UploadGrant(record.id, record.tenant, record.tenant_max_artifact_bytes)
            grants.append((grant, lifetime))
        return self._signer.sign_tree(grants)

    def _task_grant(self, record: TaskRecord, now: dt.datetime) -> tuple[UploadGrant, float]:
        """What `record`'s grant vouches for, and for how many seconds from `now`."""
        grant = UploadGrant(record.id, record.tenant, record.tenant_max_artifact_bytes)
        return grant, self._lifetime(record, now)

    def _lifetime(self, record: TaskRecord, now: dt.datetime) -> float:
        """For how many seconds from `now` `record`'s grant holds (its spec's deadline's)."""
        lifetime = self._task_max_age_seconds
        if record.deadline is not None:
            lifetime = min(lifetime, max((record.deadline - now).total_seconds(), 0.0))
        return lifetime + self._grace_seconds

    def for_session(
        self,
        session_id: str,
        tenant: str,
        max_artifact_bytes: int,
        expire_time: dt.datetime,
        now: dt.datetime,
    ) -> str:
        """The grant of a session's OpenSessionOrder, sent at `now`."""
        lifetime = max((expire_time - now).total_seconds(), 0.0) + self._grace_seconds
        return self._signer.sign(UploadGrant(session_id, tenant, max_artifact_bytes), lifetime)

    def refusal(self, grant: str, task_id: str) -> str:
        """Why `grant` is not a valid grant of the task `task_id`; "" when it is."""
        try:
            granted = self._verified(grant)
            if time.time() >= granted.expire_time:
                granted = self._signer.read(grant, "grant")  # refused, naming the expiry
        except PermissionDenied as refused:
            return refused.message
        return "" if granted.owner_id == task_id else f"grant: it is for task {granted.owner_id!r}"
