"""One exception per kind of refusal or failure, made from the gRPC status the farm answers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:
    from browserfarm.batches import BatchItem
    from browserfarm.results import Task
    from browserfarm.specs import SpecLike

CLIENT_DEADLINE = "Deadline Exceeded"
"""The message of a call that ran out of the client's own time limit: gRPC's own words, which
the HTTP transport uses too, so that browserfarm.calls can name the limit instead."""
RETRY_AFTER = "retry-after"
"""The header (gRPC metadata key) the farm's edge names a rate-limited caller's wait in."""


class FarmError(Exception):
    """A call the farm refused or could not answer; `code` is the gRPC status code."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(FarmError):
    """The request is malformed; the message names the field."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(FarmError):
    """No such task, session or artifact (or it belongs to another tenant)."""

    code = grpc.StatusCode.NOT_FOUND


class Unauthenticated(FarmError):
    """No API key, or one that is not valid (revoked, expired, mistyped)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(FarmError):
    """The API key lacks the scope the call needs."""

    code = grpc.StatusCode.PERMISSION_DENIED


class RateLimited(FarmError):
    """Too many calls: try again after `retry_after` seconds (the farm's Retry-After)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(FarmError):
    """A tenant's quota (queued tasks, open sessions, stored bytes) is used up."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(FarmError):
    """The farm (or a part the call needs) is down for now; the call may be retried."""

    code = grpc.StatusCode.UNAVAILABLE


class Timeout(FarmError):
    """The call did not finish within its timeout.

    From run() or wait(), `task_id` names the task, which the farm still holds (to
    wait() for again, get() or cancel()); None when run()'s call ended before the
    farm answered with it, or for any other call.
    """

    code = grpc.StatusCode.DEADLINE_EXCEEDED

    def __init__(self, message: str, task_id: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id


class FailedPrecondition(FarmError):
    """The object is not in a state that allows the call (e.g. a closed session)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class TaskFailed(FarmError):
    """A task ended FAILED or CANCELLED; `error_code` is the farm's code for why.

    `code` is FAILED_PRECONDITION for a failed task (as a session's failed command
    is answered) and CANCELLED for a cancelled one.
    """

    def __init__(self, task: Task) -> None:
        error_code = task.error.code if task.error else task.status.value
        detail = task.error.message if task.error else "no error recorded"
        super().__init__(f"task {task.id} {task.status.value.lower()}: {error_code}: {detail}")
        self.task = task
        self.error_code = error_code
        self.code = (
            grpc.StatusCode.CANCELLED
            if task.status.value == "CANCELLED"
            else grpc.StatusCode.FAILED_PRECONDITION
        )


class BatchIncomplete(FarmError):
    """A create_tasks call failed after the batch's earlier calls had gone through.

    `items` are the BatchItems of specs[:next_index], as create_tasks would have
    answered them. The specs from `next_index` on were not queued, but for those of
    the failed call itself when only its answer was lost (Unavailable, Timeout).
    `remaining` holds them as sent, idempotency keys included, so create_tasks(remaining)
    queues each once whichever it was. `error` is the call's own failure
    (Unavailable, RateLimited, ...), `code` its code.
    """

    def __init__(
        self,
        error: FarmError,
        items: Sequence[BatchItem],
        next_index: int,
        remaining: Sequence[SpecLike],
    ) -> None:
        super().__init__(
            f"create_tasks stopped at spec {next_index} ({len(remaining)} not sent): {error}"
        )
        self.code = error.code
        self.error = error
        self.items = list(items)
        self.next_index = next_index
        self.remaining = list(remaining)


_BY_CODE: dict[grpc.StatusCode, type[FarmError]] = {
    kind.code: kind
    for kind in (
        InvalidArgument,
        NotFound,
        Unauthenticated,
        PermissionDenied,
        Unavailable,
        Timeout,
        FailedPrecondition,
    )
}


def retry_after_of(metadata: Iterable[tuple[str, str | bytes]] | None) -> float | None:
    """The seconds a `retry-after` entry of `metadata` asks for; None without one."""
    for key, value in metadata or ():
        if key.lower() != RETRY_AFTER:
            continue
        text = value.decode() if isinstance(value, bytes) else value
        try:
            seconds = float(text)
        except ValueError:
            return None
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    return None


def from_status(
    code: grpc.StatusCode,
    details: str,
    metadata: Iterable[tuple[str, str | bytes]] | None = None,
) -> FarmError:
    """The exception for a call that ended with status `code` and message `details`.

    RESOURCE_EXHAUSTED with a Retry-After is a rate limit (the edge's answer); without
    one it is a quota the tenant has used up.
    """
    message = details or code.name
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        retry_after = retry_after_of(metadata)
        if retry_after is None:
            return QuotaExceeded(message)
        return RateLimited(message, retry_after)
    error = _BY_CODE.get(code, FarmError)(message)
    error.code = code
    return error


def from_rpc_error(error: grpc.RpcError) -> FarmError:
    """The exception for a failed gRPC call, its Retry-After read from either metadata.

    grpc.aio's calls and the blocking API's alike; UNKNOWN for an error that is no call's.
    """
    if not isinstance(error, grpc.Call | grpc.aio.AioRpcError):
        return from_status(grpc.StatusCode.UNKNOWN, str(error))
    metadata = [*(error.initial_metadata() or ()), *(error.trailing_metadata() or ())]
    return from_status(error.code(), error.details() or "", metadata)
