"""Checks a spec's steps; each error names the step (`steps[i].<field>`)."""

from collections.abc import Iterable, Mapping

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_core.task_limits import attempt_margin_ms
from farm_scheduler.field_checks import (
    MAX_TIMEOUT_MS,
    check_length,
    check_script,
    check_selector,
    check_url,
)
from farm_scheduler.key_names import unknown_key_problem

MAX_STEPS = 50
MAX_KEY_NAME_CHARS = 100
MAX_FILL_VALUE_CHARS = 10000
MAX_OPTION_CHARS = 1000
MAX_WAIT_TEXT_CHARS = 1000

# A step's fields by their proto name, with the lowerCamelCase name users send.
_STEP_FIELDS: Mapping[str, str] = {
    "click": "click",
    "fill": "fill",
    "wait_for": "waitFor",
    "press": "press",
    "scroll": "scroll",
    "hover": "hover",
    "select": "select",
    "check": "check",
    "uncheck": "uncheck",
    "goto": "goto",
    "wait": "wait",
    "evaluate": "evaluate",
    "back": "back",
    "forward": "forward",
}
# The steps whose value is a selector (or, for scroll, "top" or "bottom").
_SELECTOR_STEPS: Mapping[str, str] = {
    "click": "click",
    "wait_for": "waitFor",
    "scroll": "scroll",
    "hover": "hover",
    "check": "check",
    "uncheck": "uncheck",
}


def check_steps(steps: Iterable[tasks_pb2.Step]) -> None:
    """Raises InvalidArgument naming the first bad step (`steps[i]...`)."""
    steps = list(steps)
    if len(steps) > MAX_STEPS:
        raise InvalidArgument("steps", f"must be at most {MAX_STEPS} steps, got {len(steps)}")
    for index, step in enumerate(steps):
        _check_step(f"steps[{index}]", step)


def _check_step(path: str, step: tasks_pb2.Step) -> None:
    given = {descriptor.name for descriptor, _ in step.ListFields()}
    chosen = [json_name for proto_name, json_name in _STEP_FIELDS.items() if proto_name in given]
    if len(chosen) != 1:
        raise InvalidArgument(
            path, f"exactly one of {', '.join(_STEP_FIELDS.values())} must be set, {_got(chosen)}"
        )
    for proto_name, json_name in _SELECTOR_STEPS.items():
        # A selector may also be an accessibility snapshot reference, "aria-ref=e5".
        check_selector(f"{path}.{json_name}", getattr(step, proto_name))
    if step.press:
        _check_press(f"{path}.press", step.press)
    if step.HasField("fill"):
        check_selector(f"{path}.fill.selector", step.fill.selector, required=True)
        check_length(f"{path}.fill.value", step.fill.value, MAX_FILL_VALUE_CHARS)
    if step.HasField("select"):
        _check_select(f"{path}.select", step.select)
    if step.goto:
        check_url(step.goto, f"{path}.goto")
    if step.HasField("wait"):
        _check_wait(f"{path}.wait", step.wait)
    check_script(f"{path}.evaluate", step.evaluate)


def _got(chosen: list[str]) -> str:
    """Which of one-of fields were set, for a refusal; an empty one reads as not sent."""
    if chosen:
        return f"got {', '.join(chosen)}"
    # JSON's {"click": ""} arrives as a step with nothing set: say why it reads so.
    return "got none (an empty text, 0 or false counts as not set)"


def check_waits(steps: Iterable[tasks_pb2.Step], timeout_ms: int) -> None:
    """Raises InvalidArgument for a wait step no attempt has the time for.

    An agent keeps `attempt_margin_ms` of the attempt back, so a longer wait would fail
    every attempt with TIMEOUT, each retried in vain.
    """
    longest = timeout_ms - attempt_margin_ms(timeout_ms)
    for index, step in enumerate(steps):
        if step.wait.ms >= longest:
            raise InvalidArgument(
                f"steps[{index}].wait.ms",
                f"must be less than {longest:.0f} (timeoutMs {timeout_ms} less the"
                f" {timeout_ms - longest:.0f} ms an agent keeps back), got {step.wait.ms}",
            )


def _check_press(path: str, press: str) -> None:
    check_length(path, press, MAX_KEY_NAME_CHARS)
    problem = unknown_key_problem(press)
    if problem:
        raise InvalidArgument(path, problem)


def _check_select(path: str, select: tasks_pb2.SelectStep) -> None:
    check_selector(f"{path}.selector", select.selector, required=True)
    if not select.value and not select.label:
        raise InvalidArgument(path, "needs the option's value or its label")
    if select.value and select.label:
        # Playwright would choose the first option matching either, not one matching both.
        raise InvalidArgument(
            path, "value and label may not both be set: give the option's value or its label"
        )
    check_length(f"{path}.value", select.value, MAX_OPTION_CHARS)
    check_length(f"{path}.label", select.label, MAX_OPTION_CHARS)


def _check_wait(path: str, wait: tasks_pb2.WaitStep) -> None:
    given = (("text", bool(wait.text)), ("networkIdle", wait.network_idle), ("ms", wait.ms != 0))
    chosen = [name for name, is_set in given if is_set]
    if len(chosen) != 1:
        raise InvalidArgument(
            path, f"exactly one of text, networkIdle, ms must be set, {_got(chosen)}"
        )
    check_length(f"{path}.text", wait.text, MAX_WAIT_TEXT_CHARS)
    if wait.ms and not 1 <= wait.ms <= MAX_TIMEOUT_MS:
        raise InvalidArgument(
            f"{path}.ms", f"must be between 1 and {MAX_TIMEOUT_MS}, got {wait.ms}"
        )
