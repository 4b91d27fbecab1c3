"""How the agent classes the farm's error codes, and maps browser errors onto them.

The codes are the farm's (`farm_core.task_errors.ErrorCode`). Each is retryable
(another attempt may succeed) or final; RETRYABLE_CODES is the one list of the
retryable ones.
"""

import contextlib
import re
from collections.abc import Iterator
from enum import StrEnum

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from farm.tasks.v1 import tasks_pb2
from farm_core.task_errors import ErrorCode

RETRYABLE_CODES: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.NAVIGATION_FAILED,
        ErrorCode.TIMEOUT,
        ErrorCode.BROWSER_CRASHED,
        ErrorCode.UPLOAD_FAILED,
        ErrorCode.HTTP_ERROR,
        ErrorCode.CIRCUIT_OPEN,
        ErrorCode.AGENT_LOST,
    }
)
"""The codes another attempt may cure; every other code is final.

HTTP_ERROR is retryable only for a 5xx answer: `http_error` decides per status.
"""

BREAKER_FAILURE_CODES: frozenset[ErrorCode] = frozenset(
    {ErrorCode.NAVIGATION_FAILED, ErrorCode.TIMEOUT, ErrorCode.HTTP_ERROR}
)
"""Retryable failures that count against the target host's circuit breaker."""


def is_retryable(code: ErrorCode, http_status: int = 0) -> bool:
    """Whether a failure with `code` (and, for HTTP_ERROR, the page's status) may be retried."""
    if code is ErrorCode.HTTP_ERROR:
        return http_status >= 500
    return code in RETRYABLE_CODES


class TaskFailure(Exception):
    """A task attempt that failed, with the code and message its event carries, and its class."""

    def __init__(
        self, code: ErrorCode, message: str, *, http_status: int = 0, retryable: bool | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        # Given when the cause, not the code, decides (a name that does not exist is final).
        self.retryable = is_retryable(code, http_status) if retryable is None else retryable

    def to_proto(self) -> tasks_pb2.TaskError:
        """The TaskError of this failure."""
        return tasks_pb2.TaskError(
            code=self.code.value, message=self.message, retryable=self.retryable
        )


def http_error(status: int, url: str, field: str = "url") -> TaskFailure:
    """The failure of a main document that answered `status` (4xx final, 5xx retryable).

    `field` is the navigation's: `url`, or a step's (`steps[2].goto`, `steps[3].back`).
    """
    return TaskFailure(
        ErrorCode.HTTP_ERROR,
        f"{field}: the page answered HTTP {status} ({url}) and failOnHttpError is set",
        http_status=status,
    )


class Stage(StrEnum):
    """What the runner was doing when an error happened; decides its code."""

    NAVIGATION = "navigation"
    SELECTOR = "selector"
    SCRIPT = "script"
    CAPTURE = "capture"


_CRASH_SIGNS = (
    "target crashed",
    "page crashed",
    "browser has been closed",
    "browser has disconnected",
    "target page, context or browser has been closed",
    "browser closed",
    # Playwright's answer for an object its driver already let go of, as it does for
    # everything of a browser that disconnected (a page opening as the browser went).
    "no object with guid",
)
# Playwright's words for a selector that does not parse; an XPath one is Chromium's own.
_INVALID_SELECTOR_SIGNS = (
    "while parsing",
    "is not a valid selector",
    "unknown engine",
    "is not a valid xpath expression",
)
# Playwright's words for an element a step cannot act on (check on a <div>, select on an <input>).
_WRONG_ELEMENT_SIGNS = (
    "not a checkbox or radio button",
    "element is not a <select> element",
    "element is not an <input>",
    "cannot uncheck radio button",
)
# Playwright's word for a snapshot reference ("aria-ref=f2e3") whose frame the page no
# longer has (or never had): an element that is not there, as for any stale reference.
_GONE_FRAME_SIGN = "invalid frame in aria-ref selector"
# Chromium's own refusal of a port it deems unsafe (SMTP, echo...; its kRestrictedPorts).
_UNSAFE_PORT_SIGN = "net::err_unsafe_port"
# Playwright's refusal of a key name it has no key for (`keyboard.press("Entr")`).
_UNKNOWN_KEY_SIGN = "unknown key:"
_KEY_HINT = (
    "a key is a name such as Enter, Tab, Escape, ArrowDown, F5 or KeyA, one character,"
    " or modifiers joined with + (Control+A, Shift+Tab)"
)
# In Playwright's message for a DevTools Protocol call Chromium answered with an error.
_PROTOCOL_ERROR_SIGN = "protocol error ("


def failure_from(error: Exception, stage: Stage, field: str, selector: str = "") -> TaskFailure:
    """The TaskFailure for `error` raised while doing `stage` for the spec's `field`.

    A SELECTOR failure names `selector` when it is given.
    """
    if isinstance(error, TaskFailure):
        return error
    if isinstance(error, PlaywrightError):
        return _from_playwright(error, stage, field, selector)
    return TaskFailure(ErrorCode.INTERNAL, f"{field}: {type(error).__name__}: {error}")


def is_crash(error: TaskFailure | PlaywrightError) -> bool:
    """Whether `error` says the page or browser died (its code, or Playwright's words)."""
    if isinstance(error, TaskFailure) and error.code is ErrorCode.BROWSER_CRASHED:
        return True
    lowered = error.message.lower()
    return any(sign in lowered for sign in _CRASH_SIGNS)


def _from_playwright(
    error: PlaywrightError, stage: Stage, field: str, selector: str
) -> TaskFailure:
    detail = _first_line(error.message)
    lowered = error.message.lower()
    if any(sign in lowered for sign in _CRASH_SIGNS):
        return TaskFailure(ErrorCode.BROWSER_CRASHED, f"the browser went away during {field}")
    if stage is Stage.CAPTURE and _PROTOCOL_ERROR_SIGN in lowered:
        # Chromium itself failed the call (e.g. "Unable to capture screenshot" when no
        # frame comes under load): not the spec's fault, and another attempt mends it.
        return TaskFailure(ErrorCode.BROWSER_CRASHED, f"{field}: the browser failed: {detail}")
    if stage is Stage.SELECTOR:
        return _selector_failure(error, field, selector)
    if stage is Stage.NAVIGATION:
        if "download is starting" in lowered:
            return TaskFailure(
                ErrorCode.DOWNLOAD_REFUSED, f"{field}: the page is a download; agents refuse them"
            )
        if isinstance(error, PlaywrightTimeoutError):
            return TaskFailure(ErrorCode.TIMEOUT, f"{field}: navigation timed out ({detail})")
        if _UNSAFE_PORT_SIGN in lowered:
            # Chromium never contacted the host: no attempt can load it, and the
            # host's breaker learns nothing.
            return TaskFailure(
                ErrorCode.BLOCKED_URL, f"{field}: Chromium refuses to load this port ({detail})"
            )
        return TaskFailure(ErrorCode.NAVIGATION_FAILED, f"{field}: {detail}")
    if stage is Stage.SCRIPT:
        return TaskFailure(ErrorCode.SCRIPT_FAILED, f"{field}: {detail}")
    if _UNKNOWN_KEY_SIGN in lowered:
        # The spec's fault, not the agent's: no attempt presses a key that does not exist.
        return TaskFailure(ErrorCode.INVALID_KEY, f"{field}: {detail}; {_KEY_HINT}")
    if isinstance(error, PlaywrightTimeoutError):
        return TaskFailure(ErrorCode.TIMEOUT, f"{field}: {detail}")
    return TaskFailure(ErrorCode.INTERNAL, f"{field}: {detail}")


def _selector_failure(error: PlaywrightError, field: str, selector: str) -> TaskFailure:
    detail = _first_line(error.message)
    lowered = error.message.lower()
    if isinstance(error, PlaywrightTimeoutError):
        missing = f'no element matches "{selector}"' if selector else "no matching element appeared"
        return TaskFailure(ErrorCode.SELECTOR_NOT_FOUND, f"{field}: {missing} ({detail})")
    if any(sign in lowered for sign in _INVALID_SELECTOR_SIGNS):
        # Final at once: no wait or other attempt makes it parse. The selector is named
        # whole, as Playwright's message may quote only the part it choked on.
        named = f' "{selector}"' if selector else ""
        return TaskFailure(
            ErrorCode.SELECTOR_NOT_FOUND, f"{field}: invalid selector{named}: {detail}"
        )
    if _GONE_FRAME_SIGN in lowered:
        named = selector or detail
        return TaskFailure(
            ErrorCode.SELECTOR_NOT_FOUND,
            f'{field}: no element matches "{named}" (the page has no frame of that reference)',
        )
    if any(sign in lowered for sign in _WRONG_ELEMENT_SIGNS):
        where = f' ("{selector}")' if selector else ""
        return TaskFailure(ErrorCode.SELECTOR_NOT_FOUND, f"{field}: {detail}{where}")
    return TaskFailure(ErrorCode.INTERNAL, f"{field}: {detail}")


# Playwright states what is left of a step's time budget to the nanosecond
# ("Timeout 7999.892902000056ms exceeded."); whole milliseconds read better.
_FRACTIONAL_TIMEOUT = re.compile(r"Timeout (\d+\.\d+)ms")


def _first_line(message: str) -> str:
    """Playwright's message without its call log, the 'Page.click: ' prefix and ms fractions."""
    line = message.strip().splitlines()[0] if message.strip() else "unknown browser error"
    line = _FRACTIONAL_TIMEOUT.sub(lambda match: f"Timeout {round(float(match[1]))}ms", line)
    api_call, separator, rest = line.partition(": ")
    if separator and "." in api_call and " " not in api_call:
        return rest
    return line


@contextlib.contextmanager
def failures_as(stage: Stage, field: str, selector: str = "") -> Iterator[None]:
    """Turns any error in the block into the TaskFailure for `stage` and `field` (and selector)."""
    try:
        yield
    except TaskFailure:
        raise
    except Exception as error:
        raise failure_from(error, stage, field, selector) from error


# How a function expression starts: `function`, `async`, `(a) =>` or `a =>`.
_FUNCTION_START = re.compile(r"\s*(?:async\b|function\b|\(|[A-Za-z_$][\w$]*\s*=>)")
SCRIPT_HINT = 'must be a function expression such as "() => document.title"'


@contextlib.contextmanager
def script_failures(field: str, source: str) -> Iterator[None]:
    """failures_as(Stage.SCRIPT, field), with a hint when `source` did not compile.

    The page evaluates the source as an expression: statements (`return
    document.title`) fail with a bare SyntaxError such as "Illegal return statement".
    """
    try:
        yield
    except TaskFailure:
        raise
    except Exception as error:
        failure = failure_from(error, Stage.SCRIPT, field)
        if failure.code is ErrorCode.SCRIPT_FAILED and _is_statements(error, source):
            failure = TaskFailure(
                failure.code, f"{failure.message}; {field} {SCRIPT_HINT}, not statements"
            )
        raise failure from error


def _is_statements(error: Exception, source: str) -> bool:
    """Whether the page refused `source` as no expression (a SyntaxError, no function's start)."""
    return (
        isinstance(error, PlaywrightError)
        and _first_line(error.message).startswith("SyntaxError")
        and not _FUNCTION_START.match(source)
    )
