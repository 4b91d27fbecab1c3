"""Browser errors become stable TaskError codes with readable messages."""

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from farm_agent.errors import (
    Stage,
    TaskFailure,
    failure_from,
    failures_as,
    http_error,
    is_retryable,
    script_failures,
)
from farm_agent.limits.circuit import Outcome, outcome_of
from farm_core.task_errors import ErrorCode

CALL_LOG = "\nCall log:\n  - waiting for locator('#nope')\n"


def test_a_selector_timeout_is_selector_not_found_naming_the_field() -> None:
    error = PlaywrightTimeoutError("Locator.click: Timeout 2500ms exceeded." + CALL_LOG)
    failure = failure_from(error, Stage.SELECTOR, "steps[1].click")
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert failure.message.startswith("steps[1].click: no matching element appeared")
    assert "Call log" not in failure.message
    assert "Locator.click" not in failure.message


def test_a_selector_timeout_names_the_selector_when_given() -> None:
    error = PlaywrightTimeoutError("Locator.hover: Timeout 2500ms exceeded." + CALL_LOG)
    failure = failure_from(error, Stage.SELECTOR, "steps[3].hover", selector="#x")
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert failure.message == 'steps[3].hover: no element matches "#x" (Timeout 2500ms exceeded.)'


def test_a_timeout_left_over_from_the_budget_is_given_in_whole_milliseconds() -> None:
    error = PlaywrightTimeoutError(
        "Locator.click: Timeout 7999.892902000056ms exceeded." + CALL_LOG
    )
    failure = failure_from(error, Stage.SELECTOR, "steps[0].click", selector="#x")
    assert failure.message == 'steps[0].click: no element matches "#x" (Timeout 8000ms exceeded.)'


def test_a_step_on_the_wrong_kind_of_element_is_selector_not_found() -> None:
    error = PlaywrightError("Locator.check: Error: Not a checkbox or radio button" + CALL_LOG)
    failure = failure_from(error, Stage.SELECTOR, "steps[0].check", selector="h1")
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert failure.message == 'steps[0].check: Error: Not a checkbox or radio button ("h1")'


def test_an_unparsable_selector_is_selector_not_found() -> None:
    error = PlaywrightError('Locator.count: Unexpected token "" while parsing css selector "h1["')
    failure = failure_from(error, Stage.SELECTOR, "screenshot.selector")
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert "invalid selector" in failure.message


def test_an_unparsable_xpath_is_selector_not_found_naming_the_selector() -> None:
    error = PlaywrightError(
        "Locator.click: SyntaxError: Failed to execute 'evaluate' on 'Document': "
        "The string '//[' is not a valid XPath expression." + CALL_LOG
    )
    failure = failure_from(error, Stage.SELECTOR, "steps[0].click", selector="xpath=//[")
    assert failure.code is ErrorCode.SELECTOR_NOT_FOUND
    assert not failure.retryable
    assert failure.message.startswith('steps[0].click: invalid selector "xpath=//[": SyntaxError')


def test_a_network_error_in_navigation_is_navigation_failed() -> None:
    error = PlaywrightError(
        "Page.goto: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:9/" + CALL_LOG
    )
    failure = failure_from(error, Stage.NAVIGATION, "url")
    assert failure.code is ErrorCode.NAVIGATION_FAILED
    assert failure.message == "url: net::ERR_CONNECTION_REFUSED at http://127.0.0.1:9/"


def test_a_port_chromium_refuses_is_a_final_blocked_url_that_says_nothing_of_the_host() -> None:
    error = PlaywrightError("Page.goto: net::ERR_UNSAFE_PORT at http://127.0.0.1:9/" + CALL_LOG)
    failure = failure_from(error, Stage.NAVIGATION, "url")
    assert failure.code is ErrorCode.BLOCKED_URL
    assert not failure.retryable
    assert failure.message == (
        "url: Chromium refuses to load this port (net::ERR_UNSAFE_PORT at http://127.0.0.1:9/)"
    )
    assert outcome_of(failure) is Outcome.NEUTRAL


def test_a_navigation_timeout_is_timeout() -> None:
    error = PlaywrightTimeoutError("Page.goto: Timeout 3000ms exceeded.")
    assert failure_from(error, Stage.NAVIGATION, "url").code is ErrorCode.TIMEOUT


def test_a_script_error_is_script_failed_with_its_message() -> None:
    error = PlaywrightError("Page.evaluate: Error: boom\n    at eval (eval at evaluate)")
    failure = failure_from(error, Stage.SCRIPT, "script.source")
    assert failure.code is ErrorCode.SCRIPT_FAILED
    assert failure.message == "script.source: Error: boom"


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize(
    "message",
    [
        "Page.goto: Target crashed",
        "Target page, context or browser has been closed",
        "BrowserContext.new_page: Browser has been closed",
        "page: no object with guid page@7e854316bdaeba1401212a3362cf67af",
    ],
)
def test_a_dead_browser_is_browser_crashed_whatever_the_stage(stage: Stage, message: str) -> None:
    assert failure_from(PlaywrightError(message), stage, "x").code is ErrorCode.BROWSER_CRASHED


def test_an_unknown_error_is_internal_and_names_its_type() -> None:
    failure = failure_from(KeyError("width"), Stage.CAPTURE, "screenshot")
    assert failure.code is ErrorCode.INTERNAL
    assert failure.message == "screenshot: KeyError: 'width'"


def test_an_unknown_key_is_the_specs_fault_and_says_what_a_key_is() -> None:
    error = PlaywrightError('Keyboard.press: Unknown key: "NotAKey"')
    failure = failure_from(error, Stage.CAPTURE, "steps[0].press")
    assert failure.code is ErrorCode.INVALID_KEY
    assert not failure.retryable
    assert failure.message.startswith('steps[0].press: Unknown key: "NotAKey"; a key is a name')
    assert "Control+A" in failure.message


def test_a_task_failure_keeps_its_code() -> None:
    original = TaskFailure(ErrorCode.INVALID_DEVICE, "device: 'Nokia 3310' is not known")
    assert failure_from(original, Stage.SELECTOR, "x") is original


def test_failures_as_turns_errors_of_the_block_into_task_failures() -> None:
    with pytest.raises(TaskFailure) as caught, failures_as(Stage.SCRIPT, "script.source"):
        raise PlaywrightError("Page.evaluate: ReferenceError: nope is not defined")
    assert caught.value.code is ErrorCode.SCRIPT_FAILED
    assert caught.value.to_proto().code == "SCRIPT_FAILED"
    assert caught.value.to_proto().message == "script.source: ReferenceError: nope is not defined"


@pytest.mark.parametrize(
    ("source", "hinted"),
    [("return document.title", True), ("let x = 1; x", True), ("() => JSON.parse('{')", False)],
)
def test_a_syntax_error_of_a_source_that_is_no_function_gets_a_hint(
    source: str, hinted: bool
) -> None:
    error = PlaywrightError("Page.evaluate: SyntaxError: Illegal return statement")
    with pytest.raises(TaskFailure) as caught, script_failures("steps[0].evaluate", source):
        raise error
    assert caught.value.code is ErrorCode.SCRIPT_FAILED
    hint = (
        '; steps[0].evaluate must be a function expression such as "() => document.title", '
        "not statements"
    )
    assert caught.value.message == (
        "steps[0].evaluate: SyntaxError: Illegal return statement" + (hint if hinted else "")
    )


RETRYABLE = {
    "NAVIGATION_FAILED",
    "TIMEOUT",
    "BROWSER_CRASHED",
    "UPLOAD_FAILED",
    "CIRCUIT_OPEN",
    "AGENT_LOST",
}
FINAL = {
    "SELECTOR_NOT_FOUND",
    "INVALID_DEVICE",
    "INVALID_KEY",
    "SCRIPT_FAILED",
    "RESULT_TOO_LARGE",
    "DEADLINE_EXCEEDED",
    "DOWNLOAD_REFUSED",
    "DIALOG_SHOWING",
    "NO_DIALOG",
    "NO_SUCH_PAGE",
    "ATTEMPTS_EXHAUSTED",
    "BLOCKED_URL",
    "QUOTA_EXCEEDED",
    "OPTION_OUT_OF_RANGE",
    "INTERNAL",
    "UNKNOWN",
}


@pytest.mark.parametrize("code", sorted(RETRYABLE))
def test_agent_and_network_failures_are_retryable(code: str) -> None:
    failure = TaskFailure(ErrorCode(code), "x")
    assert failure.retryable
    assert failure.to_proto().retryable


@pytest.mark.parametrize("code", sorted(FINAL))
def test_failures_of_the_spec_or_the_task_are_final(code: str) -> None:
    failure = TaskFailure(ErrorCode(code), "x")
    assert not failure.retryable
    assert not failure.to_proto().retryable


def test_every_code_has_a_class() -> None:
    assert {code.value for code in ErrorCode} == RETRYABLE | FINAL | {"HTTP_ERROR"}


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (404, False)])
def test_an_http_error_is_retryable_only_for_5xx(status: int, retryable: bool) -> None:
    failure = http_error(status, "http://example.test/")
    assert failure.code is ErrorCode.HTTP_ERROR
    assert failure.retryable is retryable
    assert is_retryable(ErrorCode.HTTP_ERROR, status) is retryable
    assert f"HTTP {status}" in failure.message


def test_a_navigation_that_is_a_download_is_refused_for_good() -> None:
    error = PlaywrightError("Page.goto: Download is starting" + CALL_LOG)
    failure = failure_from(error, Stage.NAVIGATION, "url")
    assert failure.code is ErrorCode.DOWNLOAD_REFUSED
    assert not failure.retryable


def test_a_crashed_page_is_browser_crashed() -> None:
    failure = failure_from(PlaywrightError("Page.goto: Page crashed"), Stage.NAVIGATION, "url")
    assert failure.code is ErrorCode.BROWSER_CRASHED
    assert failure.retryable


def test_a_capture_chromium_fails_is_retried_as_a_browser_failure() -> None:
    error = PlaywrightError(
        "Page.screenshot: Protocol error (Page.captureScreenshot): Unable to capture screenshot"
    )

    failure = failure_from(error, Stage.CAPTURE, "screenshot")

    assert failure.code is ErrorCode.BROWSER_CRASHED and failure.retryable
    assert failure.message == (
        "screenshot: the browser failed: "
        "Protocol error (Page.captureScreenshot): Unable to capture screenshot"
    )


def test_a_protocol_error_of_a_script_stays_the_scripts() -> None:
    error = PlaywrightError(
        "Page.evaluate: Protocol error (Runtime.callFunctionOn): Object reference chain is too long"
    )

    assert failure_from(error, Stage.SCRIPT, "script").code is ErrorCode.SCRIPT_FAILED
