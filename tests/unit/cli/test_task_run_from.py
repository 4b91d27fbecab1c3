"""`farm task run --from` against the fake services: a rate-limited URL is waited out."""

import secrets
from pathlib import Path

import pytest

from farm_cli.main import main
from tests.unit.cli.fake_calls import Calls
from tests.unit.cli.fake_services import RATE_LIMITED_RUNS


def test_a_rate_limited_url_is_sent_again_and_succeeds_not_reported_refused(
    calls: Calls, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    limited = f"https://limited-{secrets.token_hex(4)}.test/"
    urls = tmp_path / "urls.txt"
    urls.write_text(f"{limited}\nhttps://example.com/\n")

    assert main(["task", "run", "--from", str(urls), "--content", "text"]) == 0

    runs = [request.spec.url for name, request, _ in calls.seen if name == "RunTask"]
    assert runs.count(limited) == RATE_LIMITED_RUNS + 1
    assert runs.count("https://example.com/") == 1
    assert "REFUSED" not in capsys.readouterr().out


@pytest.mark.parametrize("concurrency", ["0", "65", "abc", "2.5"])
@pytest.mark.parametrize("batch", [True, False])
def test_a_bad_concurrency_is_a_usage_error_naming_the_range_with_one_url_too(
    calls: Calls,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    concurrency: str,
    batch: bool,
) -> None:
    urls = tmp_path / "urls.txt"
    urls.write_text("https://example.com/\n")
    source = ["--from", str(urls)] if batch else ["https://example.com/"]
    runs_before = sum(name == "RunTask" for name, *_ in calls.seen)

    with pytest.raises(SystemExit) as exited:
        main(["task", "run", *source, "--content", "text", "--concurrency", concurrency])

    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"error: argument --concurrency: must be from 1 to 64, got {concurrency!r}\n"
    )
    assert sum(name == "RunTask" for name, *_ in calls.seen) == runs_before


def test_a_task_runtask_stopped_waiting_for_is_shown_as_not_ended_with_how_to_follow_it(
    calls: Calls,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the table's row on one line
    urls = tmp_path / "urls.txt"
    urls.write_text("https://example.com/unended\n")

    assert main(["task", "run", "--from", str(urls), "--content", "text"]) == 3

    table = capsys.readouterr().out
    assert "QUEUED" in table
    assert "RunTask stopped waiting before it ended: farm task watch t1" in table
