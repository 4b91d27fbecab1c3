"""What each farm role may publish and subscribe to on NATS: one table, a role not here gets none.

The core services (scheduler, auth) own the streams and hold what can mint an
identity or change a task's state, so NATS rules would not narrow them: they may
use every subject. A storage replica only publishes its audit records, asks the
schedulers to drop the cached results of the artifacts it deletes, answers the
schedulers' requests to delete the artifacts of tasks past retention, and reads the
revoked credentials auth publishes. An agent
(the least trusted host: it runs any web page) may take tasks of FARM_TASKS, report
events, use the key-value buckets of its work, read the revoked API keys (to end
the session sockets they opened), and hear orders meant for it; it
cannot publish tasks, create, change or delete a stream, read the audit stream or
another process's inbox, nor touch the sessions' routes (`farm_sessions`, which only
the scheduler writes: a route decides whose browser a CDP attach reaches). An
agent's NATS user is its agent id; agents that cannot have one each (Deployment
replicas) share the user of the shared-agent role, which may also hear, answer and
report for every other agent (docs/security.md, NATS users).
"""

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nats.js.api import DEFAULT_PREFIX

from farm_core.artifact_deletions import ARTIFACTS_DELETED_SUBJECT
from farm_core.artifact_expiry import ARTIFACTS_EXPIRE_SUBJECT
from farm_core.breakers import BREAKERS_BUCKET
from farm_core.key_revocations import REVOKED_KEYS_BUCKET
from farm_core.nats_access import inbox_prefix
from farm_core.queue import (
    AGENTS_BUCKET,
    CANCEL_BUCKET,
    CANCEL_SUBJECTS,
    EVENT_STREAM,
    ROUTES_BUCKET,
    TASK_STREAM,
    audit_subject,
    drain_subject,
    event_subject,
)
from farm_core.revocations import REVOKED_CREDENTIALS_BUCKET
from farm_core.sessions import SessionOrder, closed_subject, order_subject

# The agents' own buckets (farm_agent.kv), which the first agent creates.
AGENT_OWN_BUCKETS = ("farm_host_slots", "farm_tenant_slots", "farm_task_waits", BREAKERS_BUCKET)
AGENT_SHARED_BUCKETS = (ROUTES_BUCKET,)
"""Buckets an agent writes beside the scheduler (route claims of tasks)."""
AGENT_READ_BUCKETS = (CANCEL_BUCKET, AGENTS_BUCKET, REVOKED_KEYS_BUCKET)
"""Buckets an agent only reads (it writes its own heartbeat key in farm_agents; auth alone
writes the revoked API keys, whose sockets the agent ends)."""


class NatsRole(enum.StrEnum):
    """A kind of NATS user of the farm."""

    CORE = "core"
    """The scheduler and auth: every subject."""
    STORAGE = "storage"
    """A storage replica: its audit records; reading revoked credentials."""
    AGENT = "agent"
    """A browser agent: its work, nothing else."""
    SHARED_AGENT = "shared_agent"
    """Browser agents sharing one user: an agent's work, for any agent id."""


RESPONSE_EXPIRES_SECONDS = 3600
"""How long after a request its one reply may be sent. nats-server's default is 2
minutes: an agent's answer to a session command that ran longer (a command may take
300 s) or to a slow open or close would be refused as a permissions violation, and
the scheduler would wait out its own timeout for nothing."""


@dataclass(frozen=True)
class NatsPermissions:
    """The subjects a user may publish and subscribe to, and whether it may answer requests."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    # Answering a request: one reply to its reply subject, whatever that is, within
    # RESPONSE_EXPIRES_SECONDS.
    allow_responses: bool = False

    def server_config(self) -> dict[str, Any]:
        """The `permissions` block of a user in nats-server's configuration."""
        block: dict[str, Any] = {
            "publish": {"allow": list(self.publish)},
            "subscribe": {"allow": list(self.subscribe)},
        }
        if self.allow_responses:
            block["allow_responses"] = {"max": 1, "expires": f"{RESPONSE_EXPIRES_SECONDS}s"}
        return block


def _api(*tokens: str) -> str:
    return ".".join((DEFAULT_PREFIX, *tokens))


def bucket_reads(bucket: str) -> tuple[str, ...]:
    """Reading a key-value bucket: bind, get (direct or not), watch and list keys."""
    stream = f"KV_{bucket}"
    return (
        _api("STREAM", "INFO", stream),
        _api("STREAM", "MSG", "GET", stream),
        _api("DIRECT", "GET", stream),
        _api("DIRECT", "GET", stream, ">"),
        # A watch is an ordered consumer: made, asked about, replaced, flow-controlled.
        _api("CONSUMER", "CREATE", stream),
        _api("CONSUMER", "CREATE", stream, ">"),
        _api("CONSUMER", "INFO", stream, ">"),
        _api("CONSUMER", "DELETE", stream, ">"),
        f"$JS.FC.{stream}.>",
    )


def bucket_writes(bucket: str, key: str = ">") -> tuple[str, ...]:
    """Putting, updating and deleting `key` (every key: ">") of a bucket."""
    return (f"$KV.{bucket}.{key}",)


def _agent_buckets(agent_id: str) -> Iterable[str]:
    for bucket in AGENT_OWN_BUCKETS:
        yield _api("STREAM", "CREATE", f"KV_{bucket}")
        yield from bucket_reads(bucket) + bucket_writes(bucket)
    for bucket in AGENT_SHARED_BUCKETS:
        yield from bucket_reads(bucket) + bucket_writes(bucket)
    for bucket in AGENT_READ_BUCKETS:
        yield from bucket_reads(bucket)
    yield from bucket_writes(AGENTS_BUCKET, agent_id)


ANY_AGENT = "*"
"""The agent id of the shared-agent role: any one subject token."""


def agent_permissions(agent_id: str, user: str | None = None) -> NatsPermissions:
    """What the agent `agent_id` may do as NATS user `user` (default: its agent id)."""
    publish = (
        # Its queues: find the streams, bind the durable consumers, pull and ack tasks.
        _api("STREAM", "INFO", TASK_STREAM),
        _api("STREAM", "INFO", EVENT_STREAM),
        _api("CONSUMER", "CREATE", TASK_STREAM, ">"),
        _api("CONSUMER", "DURABLE", "CREATE", TASK_STREAM, ">"),
        _api("CONSUMER", "INFO", TASK_STREAM, ">"),
        _api("CONSUMER", "MSG", "NEXT", TASK_STREAM, ">"),
        f"$JS.ACK.{TASK_STREAM}.>",
        # Its reports: task events and session closes on subjects naming its own id
        # (the scheduler takes the reporting agent from there), its RPCs' audit records.
        event_subject("*", agent_id),
        closed_subject("*", agent_id),
        audit_subject("agent"),
        *_agent_buckets(agent_id),
    )
    subscribe = (
        f"{inbox_prefix(user or agent_id)}.>",
        # The doorbell of new work, cancels, and orders addressed to this agent.
        "tasks.*.*",
        CANCEL_SUBJECTS,
        drain_subject(agent_id),
        *(order_subject(agent_id, order) for order in SessionOrder),
    )
    return NatsPermissions(publish, subscribe, allow_responses=True)


def storage_permissions(user: str) -> NatsPermissions:
    """What a storage replica (NATS user `user`) may do: audit records, artifact deletions.

    It answers the schedulers' artifact expiries (farm_core.artifact_expiry).
    It also watches the revoked credentials (read only: auth makes and writes the bucket)
    and looks up cancelled tasks (read only: the scheduler makes and writes the bucket).
    """
    return NatsPermissions(
        # Its audit records, and the requests that drop a deleted artifact's cached result.
        publish=(
            audit_subject("storage"),
            ARTIFACTS_DELETED_SUBJECT,
            *bucket_reads(REVOKED_CREDENTIALS_BUCKET),
            *bucket_reads(CANCEL_BUCKET),
        ),
        # The scheduler's requests to delete the artifacts of tasks past retention, answered.
        subscribe=(f"{inbox_prefix(user)}.>", ARTIFACTS_EXPIRE_SUBJECT),
        allow_responses=True,
    )


CORE_PERMISSIONS = NatsPermissions(publish=(">",), subscribe=(">",))


def permissions(role: NatsRole, user: str) -> NatsPermissions:
    """The permissions of `user` in `role`."""
    if role is NatsRole.AGENT:
        return agent_permissions(user)
    if role is NatsRole.SHARED_AGENT:
        return agent_permissions(ANY_AGENT, user)
    if role is NatsRole.STORAGE:
        return storage_permissions(user)
    return CORE_PERMISSIONS
