"""The NATS contract of scheduler and agents: exact subjects and names, what matches what."""

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.queue import (
    ALL_AUDIT_SUBJECTS,
    ALL_DEAD_SUBJECTS,
    ALL_EVENT_SUBJECTS,
    ALL_TASK_SUBJECTS,
    CANCEL_SUBJECTS,
    PRIORITY_TOKENS,
    TASK_EVENT_SUBJECTS,
    Priority,
    audit_subject,
    cancel_subject,
    cancelled_task_id,
    consumer_name,
    dead_subject,
    drain_subject,
    event_agent,
    event_subject,
    next_task_subject,
    region_task_subjects,
    task_subject,
)
from farm_core.sessions import closed_subject


def matches(pattern: str, subject: str) -> bool:
    """Whether NATS delivers `subject` to a subscription on `pattern` (`*` one token, `>` rest)."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(tokens) == len(wanted)


def test_the_wire_names_are_the_ones_running_farms_use() -> None:
    # Changing any of these strands queued tasks and durable consumers of a running farm.
    assert task_subject("", Priority.NORMAL) == "tasks.any.normal"
    assert task_subject("eu", Priority.HIGH) == "tasks.eu.high"
    assert consumer_name("eu", Priority.LOW) == "agents-eu-low"
    assert next_task_subject("eu", Priority.LOW) == (
        "$JS.API.CONSUMER.MSG.NEXT.FARM_TASKS.agents-eu-low"
    )
    assert event_subject("t1", "a1") == "events.tasks.t1.a1"
    assert cancel_subject("t1") == "control.cancel.t1"
    assert drain_subject("a1") == "control.drain.a1"
    assert dead_subject("t1") == "dead.tasks.t1"
    assert audit_subject("edge") == "audit.edge"


def test_every_priority_a_task_may_have_has_one_token() -> None:
    settable = set(tasks_pb2.Priority.values()) - {tasks_pb2.PRIORITY_UNSPECIFIED}
    assert set(PRIORITY_TOKENS) == settable
    assert sorted(PRIORITY_TOKENS.values()) == sorted(Priority)
    assert PRIORITY_TOKENS[tasks_pb2.PRIORITY_HIGH] is Priority.HIGH


@pytest.mark.parametrize("priority", list(Priority))
def test_a_regions_doorbell_rings_for_its_own_tasks_only(priority: Priority) -> None:
    assert matches(region_task_subjects("eu"), task_subject("eu", priority))
    assert not matches(region_task_subjects("eu"), task_subject("us", priority))
    assert not matches(region_task_subjects("eu"), task_subject("", priority))
    assert matches(region_task_subjects("any"), task_subject("", priority))
    assert matches(ALL_TASK_SUBJECTS, task_subject("eu", priority))


def test_each_subject_falls_in_its_streams_and_listeners_patterns() -> None:
    assert matches(TASK_EVENT_SUBJECTS, event_subject("t1", "a1"))
    assert matches(ALL_EVENT_SUBJECTS, event_subject("t1", "a1"))
    assert matches(CANCEL_SUBJECTS, cancel_subject("t1"))
    assert not matches(CANCEL_SUBJECTS, drain_subject("a1"))
    assert matches(ALL_DEAD_SUBJECTS, dead_subject("t1"))
    assert matches(ALL_AUDIT_SUBJECTS, audit_subject("scheduler"))


def test_an_event_subject_names_its_agent_and_the_old_subject_none() -> None:
    assert event_agent(event_subject("t1", "agent-1")) == "agent-1"
    assert event_agent(closed_subject("ses_0123456789abcdef", "pod-a")) == "pod-a"
    assert event_agent("events.tasks.t1") is None
    assert event_agent("events.sessions.ses_0123456789abcdef") is None


def test_a_cancel_subject_names_its_task() -> None:
    assert cancelled_task_id(cancel_subject("task-1")) == "task-1"
    assert cancelled_task_id(drain_subject("task-1")) == ""
