"""An S3 outage is counted per failure, logged at its first, then at most once a period, and
at its end."""

import logging

import pytest
from prometheus_client import REGISTRY

from farm_storage.s3_outage import S3OutageLog
from tests.clock import MovedClock


def failures(operation: str) -> float:
    """farm_storage_s3_failures_total of `operation` so far."""
    return (
        REGISTRY.get_sample_value("farm_storage_s3_failures_total", {"operation": operation}) or 0
    )


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    """The outage log's lines so far, cleared."""
    found = [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name == "farm_storage.s3_outage"
    ]
    caplog.clear()
    return found


def test_an_outage_is_counted_per_failure_and_logged_once_a_period_and_at_its_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    clock = MovedClock()
    outage_log = S3OutageLog("farm-artifacts", every_seconds=60, clock=clock)
    puts, gets = failures("PutObject"), failures("GetObject")

    outage_log.failed("PutObject", OSError("connection refused"))
    assert lines(caplog) == [
        (
            logging.WARNING,
            "S3 failed PutObject on bucket 'farm-artifacts': connection refused",
        )
    ]

    for _ in range(5):
        clock.now += 10
        outage_log.failed("GetObject", OSError("read timed out"))
    assert lines(caplog) == []

    clock.now += 10
    outage_log.failed("PutObject", OSError("read timed out"))
    assert lines(caplog) == [
        (
            logging.WARNING,
            "S3 still failing: PutObject on bucket 'farm-artifacts': read timed out "
            "(since the outage began 60 s ago; farm_storage_s3_failures_total counts the "
            "failures)",
        )
    ]
    assert (failures("PutObject") - puts, failures("GetObject") - gets) == (2, 5)

    clock.now += 5
    outage_log.answered()
    assert lines(caplog) == [
        (logging.INFO, "S3 answers again on bucket 'farm-artifacts' after failing for 65 s")
    ]


def test_every_operation_is_served_before_it_fails() -> None:
    assert (
        REGISTRY.get_sample_value("farm_storage_s3_failures_total", {"operation": "RemoveObject"})
        is not None
    )


def test_answers_without_an_outage_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    outage_log = S3OutageLog("farm-artifacts", every_seconds=60, clock=MovedClock())

    outage_log.answered()
    outage_log.failed("PutObject", OSError("refused"))
    outage_log.answered()
    outage_log.answered()

    assert [message for _, message in lines(caplog)] == [
        "S3 failed PutObject on bucket 'farm-artifacts': refused",
        "S3 answers again on bucket 'farm-artifacts' after failing for 0 s",
    ]
