"""`farm task submit` against the fake services: rate-limited and UNAVAILABLE batches."""

import json
import secrets
import threading
from pathlib import Path
from typing import Any

import pytest

from farm_cli.main import main
from farm_cli.retries import RateGate
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


@pytest.mark.parametrize("as_json", [False, True])
def test_ctrl_c_while_a_batch_waits_prints_the_answers_of_the_batches_queued_before(
    calls: Calls,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    as_json: bool,
) -> None:
    limited = f"https://limited-{secrets.token_hex(4)}.test/"
    urls = ["https://example.com/"] * 1000 + [limited] * 2
    specs = write_specs(tmp_path / "specs.jsonl", [{"url": url, "content": {}} for url in urls])
    sleep = RateGate.sleep

    def interrupted(gate: RateGate, seconds: float) -> None:
        # Ctrl-C while the command waits out the second batch's rate limit.
        if threading.current_thread() is threading.main_thread():
            raise KeyboardInterrupt
        sleep(gate, seconds)

    monkeypatch.setattr(RateGate, "sleep", interrupted)

    assert main(["task", "submit", specs, *(["--json"] if as_json else [])]) == 130

    out, err = capsys.readouterr()
    # The first 1,000 are queued: their tasks are named, for `farm task cancel --from`.
    assert [task["spec"]["url"] for task in json.loads(out)["tasks"]] == urls[:1000]
    if as_json:
        assert err == ""
    else:
        assert err.splitlines()[-1] == (
            "specs 1-1000 of 1002 answered (above); "
            "specs 1001-1002 were being sent when interrupted"
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


def test_a_prefix_keys_each_spec_without_a_key_by_its_line_and_keeps_the_files_keys(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "specs.jsonl"
    spec = {"url": "https://example.com/", "content": {}}
    lines = [spec, {**spec, "idempotencyKey": "own"}, spec]
    path.write_text(f"{json.dumps(lines[0])}\n\n{json.dumps(lines[1])}\n{json.dumps(lines[2])}\n")
    earlier = len(calls.seen)

    assert main(["task", "submit", str(path), "--idempotency-prefix", "nightly"]) == 0

    (batch,) = batches_sent(calls, earlier)
    assert [request.idempotency_key for request in batch.requests] == [
        "nightly:1",
        "own",
        "nightly:4",
    ]
    printed = json.loads(capsys.readouterr().out)
    keys = [task["spec"]["idempotencyKey"] for task in printed["tasks"]]
    assert keys == ["nightly:1", "own", "nightly:4"]


def test_with_a_prefix_an_unavailable_batch_of_specs_without_keys_is_sent_again(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flaky = f"https://flaky-{secrets.token_hex(4)}.test/"
    specs = write_specs(tmp_path / "specs.jsonl", [{"url": flaky, "content": {}}] * 2)
    earlier = len(calls.seen)

    assert main(["task", "submit", specs, "--idempotency-prefix", "p"]) == 0

    first, again = batches_sent(calls, earlier)
    assert again == first
    assert [request.idempotency_key for request in again.requests] == ["p:1", "p:2"]
    out, err = capsys.readouterr()
    assert len(json.loads(out)["tasks"]) == 2
    assert err.startswith(
        "specs 1-2 of 2: UNAVAILABLE: the scheduler is restarting; sending them again in "
    )


def test_a_prefix_too_long_for_the_keys_is_refused_naming_it_before_anything_is_sent(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    specs = write_specs(tmp_path / "specs.jsonl", [{"url": "https://example.com/"}] * 10)
    earlier = len(calls.seen)

    # Line 10's key would be 125 + ":10" = 128 characters: the farm's most.
    assert main(["task", "submit", specs, "--idempotency-prefix", "p" * 125]) == 0
    capsys.readouterr()
    assert main(["task", "submit", specs, "--idempotency-prefix", "p" * 126]) == 2

    assert len(batches_sent(calls, earlier)) == 1
    assert capsys.readouterr().err == (
        f"error: --idempotency-prefix is too long (126 characters): the key of {specs} line 10 "
        "would be 129 characters, and the farm takes at most 128; give a prefix of at most 125\n"
    )


def test_an_empty_prefix_is_refused(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    specs = write_specs(tmp_path / "specs.jsonl", [{"url": "https://example.com/"}])

    assert main(["task", "submit", specs, "--idempotency-prefix", ""]) == 2

    assert capsys.readouterr().err == "error: --idempotency-prefix must not be empty\n"


@pytest.mark.parametrize("as_json", [False, True])
def test_with_a_prefix_a_batch_that_fails_says_the_same_command_again_is_safe(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path, as_json: bool
) -> None:
    broken = f"https://broken-{secrets.token_hex(4)}.test/"
    urls = ["https://example.com/"] * 1000 + [broken] * 2
    specs = write_specs(tmp_path / "specs.jsonl", [{"url": url, "content": {}} for url in urls])
    command = ["task", "submit", specs, "--idempotency-prefix", "night of 31"]

    assert main([*command, *(["--json"] if as_json else [])]) == 1

    out, err = capsys.readouterr()
    assert len(json.loads(out)["tasks"]) == 1000
    if as_json:
        assert json.loads(err)["error"]["code"] == "INTERNAL"
    else:
        assert err.splitlines() == [
            "specs 1-1000 of 1002 answered (above); specs 1001-1002 failed (below)",
            "the same command again (--idempotency-prefix 'night of 31') queues the rest "
            "and answers the specs already queued with their tasks: none is queued twice",
            "error: INTERNAL: the database went away",
        ]
