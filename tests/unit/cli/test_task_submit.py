"""`farm task submit` against the fake services: rate-limited and UNAVAILABLE batches."""

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from farm_cli.main import main
from tests.unit.cli.fake_calls import Calls
from tests.unit.cli.fake_services import BATCH_RETRY_AFTER


def write_specs(path: Path, specs: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(spec) + "\n" for spec in specs))
    return str(path)


def batches_sent(calls: Calls, earlier: int) -> list[Any]:
    return [request for name, request, _ in calls.seen[earlier:] if name == "CreateTasks"]


def test_a_rate_limited_batch_is_sent_again_after_its_retry_after_and_the_file_is_queued(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    limited = f"https://limited-{secrets.token_hex(4)}.test/"
    urls = ["https://example.com/"] * 1000 + [limited] * 2
    specs = write_specs(tmp_path / "specs.jsonl", [{"url": url, "content": {}} for url in urls])
    earlier = len(calls.seen)

    assert main(["task", "submit", specs]) == 0

    batches = batches_sent(calls, earlier)
    assert [len(batch.requests) for batch in batches] == [1000, 2, 2]
    assert batches[2] == batches[1]
    out, err = capsys.readouterr()
    printed = json.loads(out)
    assert [task["spec"]["url"] for task in printed["tasks"]] == urls
    assert printed["errors"] == []
    assert err == (
        f"specs 1001-1002 of 1002: rate-limited (Retry-After {BATCH_RETRY_AFTER} s); "
        f"sending them again in {BATCH_RETRY_AFTER:.1f} s\n"
    )


def test_with_json_a_rate_limit_is_waited_out_without_a_line(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    limited = f"https://limited-{secrets.token_hex(4)}.test/"
    specs = write_specs(tmp_path / "specs.jsonl", [{"url": limited, "content": {}}])

    assert main(["task", "submit", specs, "--json"]) == 0

    out, err = capsys.readouterr()
    assert len(json.loads(out)["tasks"]) == 1
    assert err == ""


def test_an_unavailable_batch_whose_specs_all_have_keys_is_sent_again(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flaky = f"https://flaky-{secrets.token_hex(4)}.test/"
    keyed = [{"url": flaky, "content": {}, "idempotencyKey": f"k{n}"} for n in range(2)]
    specs = write_specs(tmp_path / "specs.jsonl", keyed)
    earlier = len(calls.seen)

    assert main(["task", "submit", specs]) == 0

    assert [len(batch.requests) for batch in batches_sent(calls, earlier)] == [2, 2]
    out, err = capsys.readouterr()
    assert len(json.loads(out)["tasks"]) == 2
    assert err.startswith(
        "specs 1-2 of 2: UNAVAILABLE: the scheduler is restarting; sending them again in "
    )


def test_an_unavailable_batch_with_a_spec_without_a_key_is_not_sent_again(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flaky = f"https://flaky-{secrets.token_hex(4)}.test/"
    mixed = [{"url": flaky, "content": {}, "idempotencyKey": "k1"}, {"url": flaky, "content": {}}]
    specs = write_specs(tmp_path / "specs.jsonl", mixed)
    earlier = len(calls.seen)

    assert main(["task", "submit", specs]) == 1

    assert len(batches_sent(calls, earlier)) == 1
    assert capsys.readouterr().err == "error: UNAVAILABLE: the scheduler is restarting\n"


@pytest.mark.parametrize("as_json", [False, True])
def test_a_batch_that_fails_for_good_leaves_the_earlier_batches_answers_printed(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path, as_json: bool
) -> None:
    flaky = f"https://flaky-{secrets.token_hex(4)}.test/"
    urls = ["https://example.com/"] * 1000 + [flaky] * 1000 + ["https://example.org/"]
    specs = write_specs(tmp_path / "specs.jsonl", [{"url": url, "content": {}} for url in urls])

    assert main(["task", "submit", specs, *(["--json"] if as_json else [])]) == 1

    out, err = capsys.readouterr()
    assert [task["spec"]["url"] for task in json.loads(out)["tasks"]] == urls[:1000]
    if as_json:
        assert json.loads(err)["error"]["code"] == "UNAVAILABLE"
    else:
        assert err.splitlines() == [
            "specs 1-1000 of 2001 answered (above); specs 1001-2000 failed (below); "
            "spec 2001 not sent",
            "error: UNAVAILABLE: the scheduler is restarting",
        ]
