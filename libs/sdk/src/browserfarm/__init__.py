"""browserfarm: headless Chromium as a service, from Python.

    import browserfarm
    with browserfarm.Client() as farm:  # FARM_URL, FARM_API_KEY if set; else the `make run` farm
        png = farm.screenshot("https://example.com", full_page=True)

`AsyncClient` is the same with `await`. See docs/sdk.md.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from browserfarm.aio import AsyncClient
    from browserfarm.batches import BatchItem, ItemError, TaskPage
    from browserfarm.cancels import CancelItem
    from browserfarm.config import ClientOptions, ClientSettings
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
    "CancelItem",
    "Client",
    "ClientOptions",
    "ClientSettings",
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

# Where each public name is defined. A name is imported on first use, so that a
# program needing one module of the package (the `farm` command reads
# browserfarm.local_farm) does not import both transports, grpc and httpx, with it.
_DEFINED_IN = {
    "Artifact": "browserfarm.results",
    "AsyncClient": "browserfarm.aio",
    "AsyncSession": "browserfarm.sessions",
    "BatchIncomplete": "browserfarm.errors",
    "BatchItem": "browserfarm.batches",
    "CancelItem": "browserfarm.cancels",
    "Client": "browserfarm.sync",
    "ClientOptions": "browserfarm.config",
    "ClientSettings": "browserfarm.config",
    "FailedPrecondition": "browserfarm.errors",
    "FarmError": "browserfarm.errors",
    "InvalidArgument": "browserfarm.errors",
    "ItemError": "browserfarm.batches",
    "NotFound": "browserfarm.errors",
    "PermissionDenied": "browserfarm.errors",
    "QuotaExceeded": "browserfarm.errors",
    "RateLimited": "browserfarm.errors",
    "Result": "browserfarm.results",
    "Session": "browserfarm.sync",
    "SessionInfo": "browserfarm.results",
    "Tab": "browserfarm.results",
    "Task": "browserfarm.results",
    "TaskError": "browserfarm.results",
    "TaskFailed": "browserfarm.errors",
    "TaskPage": "browserfarm.batches",
    "TaskStatus": "browserfarm.results",
    "Timeout": "browserfarm.errors",
    "Unauthenticated": "browserfarm.errors",
    "Unavailable": "browserfarm.errors",
    "WebhookSecret": "browserfarm.results",
}


def __getattr__(name: str) -> Any:
    """The public name `name`, imported from its module on first use."""
    module = _DEFINED_IN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the public ones not yet imported too."""
    return sorted({*globals(), *__all__})
