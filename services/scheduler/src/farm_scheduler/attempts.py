"""One attempt of a task as its history keeps it, and how an attempt is recorded as lost.

An attempt is lost when its task's message is delivered again while the attempt has
not ended: JetStream heard nothing from its agent for the ack wait (the agent died,
or NATS or the link to it was down). The scheduler ends it then with AGENT_LOST,
naming the silent agent; if the attempt reports after all (its agent was cut off,
not dead), its own end replaces the AGENT_LOST one.
"""

import dataclasses
import datetime as dt
from dataclasses import dataclass

from farm_core.task_errors import ErrorCode


@dataclass(frozen=True)
class Attempt:
    """One attempt of a task: the agent that ran it, when, and its error if it failed."""

    number: int
    agent_id: str = ""
    start_time: dt.datetime | None = None
    finish_time: dt.datetime | None = None
    error_code: str = ""
    error_message: str = ""
    retryable: bool = False


def lost_before(
    history: tuple[Attempt, ...], number: int, by_agent: str, when: dt.datetime
) -> tuple[Attempt, ...]:
    """`history` with the unfinished attempts before `number` ended at `when`, AGENT_LOST.

    The task's message came again (to `by_agent`) while they had not reported an end.
    """

    def lost(attempt: Attempt) -> Attempt:
        if attempt.number >= number or attempt.finish_time or attempt.start_time is None:
            return attempt
        return dataclasses.replace(
            attempt,
            finish_time=when,
            error_code=ErrorCode.AGENT_LOST.value,
            error_message=f"agent {attempt.agent_id!r} sent no end of this attempt (it died, "
            "lost NATS for longer than the ack wait, or was stopped), and the task was "
            f"delivered again, to agent {by_agent!r}",
            retryable=True,
        )

    return tuple(lost(attempt) for attempt in history)


def unless_lost(attempt: Attempt) -> Attempt:
    """The attempt without the AGENT_LOST end that its own, later report replaces."""
    if attempt.error_code != ErrorCode.AGENT_LOST.value:
        return attempt
    return dataclasses.replace(
        attempt, finish_time=None, error_code="", error_message="", retryable=False
    )
