"""Which tasks may run in a warm (kept and cleared) browser context, and which need a fresh one.

A warm context is cleared between tasks of its tenant (`farm_agent.browser.warm`), but
only of the state a page can leave behind by itself. A task that puts state into the
context from outside (cookies, a profile), runs code of the tenant's (a script, an
evaluate step), sets the context up at creation (page setup, a device) or records it
(screencast, HAR) gets a context of its own, whatever its `isolation` asks: a warm
request for such a task falls back to a fresh context, never the other way round.
"""

from dataclasses import dataclass
from typing import Literal

from farm.tasks.v1 import tasks_pb2

IsolationDefault = Literal["warm", "context"]
"""The agent's choice for tasks that leave `isolation` unspecified (FARM_AGENT_ISOLATION)."""


@dataclass(frozen=True)
class IsolationChoice:
    """Whether a task runs warm, and if not, the field that needs a fresh context ("" if asked)."""

    warm: bool
    reason: str = ""


def needs_own_context(spec: tasks_pb2.TaskSpec) -> str:
    """The first field of `spec` that needs a fresh context, in JSON spelling; "" if none."""
    fixed = (
        ("script", spec.HasField("script")),
        ("audit", spec.HasField("audit")),
        ("profile", bool(spec.profile)),
        ("saveProfile", spec.save_profile),
        ("device", bool(spec.device)),
        ("screencast", spec.HasField("screencast")),
        ("collect.har", spec.collect.har),
    )
    for field, present in fixed:
        if present:
            return field
    for index, step in enumerate(spec.steps):
        if step.evaluate:
            return f"steps[{index}].evaluate"
    # Any page setup: cookies are state from outside, and the rest are creation options
    # of a context (user agent, locale, time zone, headers, JavaScript) or its routes.
    for descriptor, _ in spec.setup.ListFields():
        return f"setup.{descriptor.json_name}"
    return ""


def choose_isolation(
    spec: tasks_pb2.TaskSpec, default: IsolationDefault, warm_contexts: int
) -> IsolationChoice:
    """Warm or a fresh context for `spec`, given the agent's default and its warm context limit."""
    if spec.isolation == tasks_pb2.ISOLATION_CONTEXT:
        return IsolationChoice(False, "isolation")
    if spec.isolation == tasks_pb2.ISOLATION_UNSPECIFIED and default == "context":
        return IsolationChoice(False, "FARM_AGENT_ISOLATION")
    if warm_contexts <= 0:
        return IsolationChoice(False, "FARM_AGENT_WARM_CONTEXTS")
    reason = needs_own_context(spec)
    return IsolationChoice(not reason, reason)
