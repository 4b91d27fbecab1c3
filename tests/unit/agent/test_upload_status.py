"""Which failed storage calls the agent tries again: grpcio's lost status (grpc/grpc#36066)."""

import grpc
import pytest

from farm_agent.work.uploader import RetryPolicy, status_lost

EMPTY = grpc.aio.Metadata()
# What grpc.aio (1.85) raises when a write fails after storage ended the upload.
LOST = grpc.aio.AioRpcError(
    grpc.StatusCode.INTERNAL,
    EMPTY,
    EMPTY,
    "Internal error from Core",
    'Failed "execute_batch": (<grpc._cython.cygrpc.SendMessageOperation object at 0x7f>,)',
)
STALE = grpc.aio.AioRpcError(
    grpc.StatusCode.INTERNAL, EMPTY, EMPTY, "attempt 1 is not task 't''s running attempt"
)
REVOKED = grpc.aio.AioRpcError(grpc.StatusCode.UNAUTHENTICATED, EMPTY, EMPTY, "revoked")
UNAVAILABLE = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, EMPTY, EMPTY, "S3 failed")


async def tries_until(answers: list[grpc.aio.AioRpcError]) -> tuple[int, list[float]]:
    """The tries and waits of RetryPolicy's loop while the call fails with `answers` in turn."""
    tries = 0
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def call() -> None:
        nonlocal tries
        tries += 1
        raise answers[min(tries, len(answers)) - 1]

    retrying = RetryPolicy(attempts=5).retrying(lambda _state: None, sleep)
    with pytest.raises(grpc.aio.AioRpcError):
        await retrying(call)
    return tries, waits


def test_only_grpcios_own_internal_is_a_lost_status() -> None:
    assert status_lost(LOST)
    assert not status_lost(STALE)
    assert not status_lost(REVOKED)


async def test_a_lost_status_is_tried_again_at_once_until_storage_answers() -> None:
    # Storage did answer: the retry is to hear what, not to wait out an outage.
    assert await tries_until([LOST, LOST, REVOKED]) == (3, [0.0, 0.0])
    assert await tries_until([UNAVAILABLE, LOST, UNAVAILABLE, REVOKED]) == (4, [0.2, 0.0, 0.8])


async def test_an_internal_error_storage_sends_is_tried_once() -> None:
    assert await tries_until([STALE]) == (1, [])
