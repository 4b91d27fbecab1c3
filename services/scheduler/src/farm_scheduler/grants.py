"""The grants the scheduler hands out with tasks and sessions, and checks on agents' events.

A task's WorkItem is published once and redelivered as is (to any agent, for each
attempt), so its grant cannot name an attempt and must last as long as the message
can: the task stream's max age, cut short by the task's deadline, plus a grace for
the last attempt's run and upload. A session's grant lasts until its expiry plus
the grace. A grant names the profile and baselines its owner may use (spec_names,
command_names): storage refuses the others. The tasks published together (a
batch, a group of creates) get their grants from one Merkle tree with one
signature (farm_core.grants), unless `trees` is off.
"""

import datetime as dt
import functools
import time
from collections.abc import Sequence

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import PermissionDenied
from farm_core.grants import GrantNames, GrantSigner, UploadGrant
from farm_core.queue import QueueLimits
from farm_scheduler.records import TaskRecord

VERIFIED_GRANTS_KEPT = 4096
"""How many checked grants are remembered: every event of a task carries the same one."""
NO_NAMES: frozenset[str] = frozenset()


def spec_names(spec: tasks_pb2.TaskSpec) -> frozenset[str]:
    """The profile (to load, and to save with save_profile) and baseline `spec` uses."""
    if not spec.profile and not spec.screenshot.compare.baseline:
        return NO_NAMES
    names = []
    if spec.profile:
        names.append(GrantNames.profile(spec.profile, spec.save_profile))
    if spec.screenshot.compare.baseline:
        names.append(GrantNames.baseline(spec.screenshot.compare.baseline))
    return frozenset(names)


def command_names(command: sessions_pb2.SessionCommand) -> frozenset[str]:
    """The baseline a session command's screenshot compares with, if any."""
    baseline = command.screenshot.compare.baseline
    return frozenset((GrantNames.baseline(baseline),)) if baseline else NO_NAMES


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
        # The records of a batch share their specs: each spec's lifetime and names are
        # worked out once. id(): the records hold their specs, so no other spec takes the
        # id meanwhile.
        per_spec: dict[int, tuple[float, frozenset[str]]] = {}
        grants = []
        for record in records:
            known = per_spec.get(id(record.spec))
            if known is None:
                known = per_spec[id(record.spec)] = (
                    self._lifetime(record, now),
                    spec_names(record.spec),
                )
            lifetime, names = known
            grant = UploadGrant(
                record.id, record.tenant, record.tenant_max_artifact_bytes, names=names
            )
            grants.append((grant, lifetime))
        return self._signer.sign_tree(grants)

    def _task_grant(self, record: TaskRecord, now: dt.datetime) -> tuple[UploadGrant, float]:
        """What `record`'s grant vouches for, and for how many seconds from `now`."""
        grant = UploadGrant(
            record.id,
            record.tenant,
            record.tenant_max_artifact_bytes,
            names=spec_names(record.spec),
        )
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
        profile: str = "",
    ) -> str:
        """The grant of a session's OpenSessionOrder, sent at `now`.

        It names the session's `profile` (loaded at open, saved at close) and no baseline.
        """
        lifetime = max((expire_time - now).total_seconds(), 0.0) + self._grace_seconds
        names = frozenset((GrantNames.profile(profile, save=True),)) if profile else NO_NAMES
        grant = UploadGrant(session_id, tenant, max_artifact_bytes, names=names)
        return self._signer.sign(grant, lifetime)

    def for_command(
        self,
        session_id: str,
        tenant: str,
        max_artifact_bytes: int,
        command: sessions_pb2.SessionCommand,
        lifetime_seconds: float,
    ) -> str:
        """The grant of one session command that compares a screenshot, naming its baseline.

        "" for a command that compares none (the session's grant serves it).
        """
        names = command_names(command)
        if not names:
            return ""
        grant = UploadGrant(session_id, tenant, max_artifact_bytes, names=names)
        return self._signer.sign(grant, lifetime_seconds + self._grace_seconds)

    def refusal(self, grant: str, task_id: str) -> str:
        """Why `grant` is not a valid grant of the task `task_id`; "" when it is."""
        try:
            granted = self._verified(grant)
            if time.time() >= granted.expire_time:
                granted = self._signer.read(grant, "grant")  # refused, naming the expiry
        except PermissionDenied as refused:
            return refused.message
        return "" if granted.owner_id == task_id else f"grant: it is for task {granted.owner_id!r}"
