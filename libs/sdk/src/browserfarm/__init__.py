"""browserfarm: headless Chromium as a service, from Python.

    import browserfarm
    with browserfarm.Client() as farm:  # FARM_URL, FARM_API_KEY if set; else the `make run` farm
        png = farm.screenshot("https://example.com", full_page=True)

`AsyncClient` is the same with `await`. See docs/sdk.md.
"""

from browserfarm.aio import AsyncClient
from browserfarm.batches import BatchItem, ItemError, TaskPage
from browserfarm.config import ClientOptions
from browserfarm.errors import (
    BatchIncomplete,
    FailedPrecondition,
    FarmError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    TaskFailed,
    Timeout,
    Unauthenticated,
    Unavailable,
)
from browserfarm.results import (
    Artifact,
    Result,
    SessionInfo,
    Tab,
    Task,
    TaskError,
    TaskStatus,
    WebhookSecret,
)
from browserfarm.sessions import AsyncSession
from browserfarm.sync import Client, Session

__all__ = [
    "Artifact",
    "AsyncClient",
    "AsyncSession",
    "BatchIncomplete",
    "BatchItem",
    "Client",
    "ClientOptions",
    "FailedPrecondition",
    "FarmError",
    "InvalidArgument",
    "ItemError",
    "NotFound",
    "PermissionDenied",
    "QuotaExceeded",
    "RateLimited",
    "Result",
    "Session",
    "SessionInfo",
    "Tab",
    "Task",
    "TaskError",
    "TaskFailed",
    "TaskPage",
    "TaskStatus",
    "Timeout",
    "Unauthenticated",
    "Unavailable",
    "WebhookSecret",
]
