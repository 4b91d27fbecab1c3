"""`farm audit --since`: an age or an RFC 3339 time, a clear error otherwise."""

import datetime as dt

import pytest

from farm_cli.commands.audit import since_time
from farm_cli.console import CliError

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("90s", NOW - dt.timedelta(seconds=90)),
        ("30m", NOW - dt.timedelta(minutes=30)),
        ("2h", NOW - dt.timedelta(hours=2)),
        ("7d", NOW - dt.timedelta(days=7)),
        ("2026-02-28T10:00:00+01:00", dt.datetime(2026, 2, 28, 9, 0, tzinfo=dt.UTC)),
        ("2026-02-28T10:00:00", dt.datetime(2026, 2, 28, 10, 0, tzinfo=dt.UTC)),
    ],
)
def test_since_takes_an_age_or_a_time(text: str, expected: dt.datetime | None) -> None:
    assert since_time(text, NOW) == expected


def test_since_that_is_neither_names_the_option() -> None:
    with pytest.raises(CliError, match=r"^--since:"):
        since_time("yesterday", NOW)
