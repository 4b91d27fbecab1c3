"""Why a task failed: the codes a `TaskError.code` may hold, the one list both services write.

Agents report all but UNKNOWN; the scheduler writes DEADLINE_EXCEEDED for a task
still queued at its deadline and UNKNOWN for a failure reported without a code. The
proto keeps `code` a string, so the public JSON shows the name (`"code": "TIMEOUT"`).
Which codes another attempt may cure is the agent's call (`farm_agent.errors`).
docs/api.md lists exactly these codes (a test checks).
"""

from enum import StrEnum


class ErrorCode(StrEnum):
    """The machine-readable `TaskError.code` of a failed attempt or task."""

    NAVIGATION_FAILED = "NAVIGATION_FAILED"
    """The page could not be reached: network error, DNS failure, refused connection."""
    TIMEOUT = "TIMEOUT"
    """The attempt's timeoutMs ran out (a hung page too)."""
    BROWSER_CRASHED = "BROWSER_CRASHED"
    """The renderer or browser died, or Chromium failed a capture itself."""
    UPLOAD_FAILED = "UPLOAD_FAILED"
    """Storage could not store an artifact after retries."""
    HTTP_ERROR = "HTTP_ERROR"
    """The main document answered an HTTP error and failOnHttpError is set."""
    CIRCUIT_OPEN = "CIRCUIT_OPEN"
    """The host's circuit breaker is open and the agent fails tasks for it."""
    SELECTOR_NOT_FOUND = "SELECTOR_NOT_FOUND"
    """A selector matched no element in time, is not a valid selector, or matched an element
    the step cannot act on (hidden, disabled, not a checkbox, no such option)."""
    INVALID_DEVICE = "INVALID_DEVICE"
    """The spec names a device Playwright does not know."""
    INVALID_KEY = "INVALID_KEY"
    """A press step names a key Playwright does not know."""
    SCRIPT_FAILED = "SCRIPT_FAILED"
    """The spec's script threw."""
    RESULT_TOO_LARGE = "RESULT_TOO_LARGE"
    """A script's or extract's JSON result, or the whole result, is larger than allowed."""
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    """The task's deadline passed before it could end."""
    DOWNLOAD_REFUSED = "DOWNLOAD_REFUSED"
    """The page is a file download, which agents refuse."""
    DIALOG_SHOWING = "DIALOG_SHOWING"
    """A session's page shows a dialog; the command must answer it first (`dialog`)."""
    NO_DIALOG = "NO_DIALOG"
    """A session command answered a dialog, but the page shows none."""
    AGENT_LOST = "AGENT_LOST"
    """An attempt's agent stopped answering (it died, or lost NATS past the ack wait)
    and the task was delivered again; set on that attempt in the task's history."""
    NO_SUCH_PAGE = "NO_SUCH_PAGE"
    """A session command's `tabs` names a page the session lacks, or would close its last."""
    ATTEMPTS_EXHAUSTED = "ATTEMPTS_EXHAUSTED"
    """maxAttempts attempts ended without a result (their agents died)."""
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    """Storage refused an artifact: the tenant's byte quota (or the size limit) is reached."""
    OPTION_OUT_OF_RANGE = "OPTION_OUT_OF_RANGE"
    """An action's option the page cannot honour: pdf.pageRanges naming no page of the document,
    pdf.margin leaving no room on the paper, a screenshot.clip wholly outside the capture."""
    BLOCKED_URL = "BLOCKED_URL"
    """The egress guard refused the URL or a redirect of it, or Chromium refused its port."""
    INTERNAL = "INTERNAL"
    """A bug in the agent, or the farm's state in NATS KV unreadable; the message says what."""
    UNKNOWN = "UNKNOWN"
    """An agent reported a failure without a code."""
