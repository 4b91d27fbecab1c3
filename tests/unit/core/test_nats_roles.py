"""The agents' NATS roles: the shared one's permissions for any agent id, replies in its
user's inbox and for as long as an order may wait."""

from farm_core.key_revocations import REVOKED_KEYS_BUCKET
from farm_core.nats_roles import NatsRole, agent_permissions, bucket_reads, permissions
from farm_core.sessions import SESSIONS_BUCKET, SessionOrder
from farm_scheduler.field_checks import MAX_TIMEOUT_MS
from farm_scheduler.sessions.api import COMMAND_ANSWER_MARGIN_SECONDS
from farm_scheduler.settings import SchedulerSettings


def test_the_shared_agent_user_hears_any_agents_orders_in_its_own_inbox() -> None:
    shared = permissions(NatsRole.SHARED_AGENT, "agent")
    assert "_INBOX.agent.>" in shared.subscribe
    assert not any(s.startswith("_INBOX.*") or s == "_INBOX.>" for s in shared.subscribe)
    assert "control.drain.*" in shared.subscribe
    assert {f"sessions.*.{order.value}" for order in SessionOrder} <= set(shared.subscribe)
    assert "$KV.farm_agents.*" in shared.publish
    assert shared.allow_responses


def test_the_shared_agent_may_do_no_more_than_an_agent_of_any_id() -> None:
    shared = permissions(NatsRole.SHARED_AGENT, "agent")
    one = agent_permissions("pod-a")

    def generic(subjects: tuple[str, ...], agent_id: str) -> set[str]:
        return {s.replace(agent_id, "*") for s in subjects if not s.startswith("_INBOX.")}

    assert generic(shared.publish, "*") == generic(one.publish, "pod-a")
    assert generic(shared.subscribe, "*") == generic(one.subscribe, "pod-a")
    assert permissions(NatsRole.AGENT, "agent-1") == agent_permissions("agent-1")
    assert "_INBOX.agent-1.>" in agent_permissions("agent-1").subscribe


def test_an_agent_may_answer_an_order_as_late_as_the_scheduler_waits_for_it() -> None:
    # nats-server lets a user with a bare `allow_responses: true` reply only within 2
    # minutes of the request: a longer session command's answer was refused.
    longest_command = MAX_TIMEOUT_MS / 1000 + COMMAND_ANSWER_MARGIN_SECONDS
    longest_close = SchedulerSettings().session_close_timeout_seconds
    block = agent_permissions("agent-1").server_config()["allow_responses"]
    assert block["max"] == 1
    assert int(block["expires"].removesuffix("s")) > max(longest_command, longest_close, 120)


def test_no_agent_may_touch_the_sessions_routes() -> None:
    # A route decides whose browser a CDP attach reaches: only the scheduler writes them.
    for role, user in ((NatsRole.AGENT, "agent-1"), (NatsRole.SHARED_AGENT, "agent")):
        subjects = permissions(role, user).publish
        assert not [s for s in subjects if SESSIONS_BUCKET in s or s in {">", "$KV.>"}]


def test_agents_read_the_revoked_api_keys_and_only_auth_writes_them() -> None:
    # An agent ends the session sockets of each key named there.
    for role, user in ((NatsRole.AGENT, "agent-1"), (NatsRole.SHARED_AGENT, "agent")):
        subjects = permissions(role, user).publish
        assert set(bucket_reads(REVOKED_KEYS_BUCKET)) <= set(subjects)
        assert not [s for s in subjects if s.startswith(f"$KV.{REVOKED_KEYS_BUCKET}")]
        assert not [s for s in subjects if s.endswith(f"STREAM.CREATE.KV_{REVOKED_KEYS_BUCKET}")]
    assert not [
        s for s in permissions(NatsRole.STORAGE, "storage").publish if REVOKED_KEYS_BUCKET in s
    ]
