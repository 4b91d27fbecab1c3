"""The user CLI against in-process fake services: its key, errors and hints, artifact commands."""

import json
from pathlib import Path

import pytest

from farm_cli.main import main
from farm_core.free_ports import free_port
from tests.unit.cli.conftest import KEY
from tests.unit.cli.fake_calls import Calls
from tests.unit.cli.fake_services import PNG_BYTES, S3_DOWN


def test_whoami_sends_the_api_key_and_prints_proto3_json(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["whoami"]) == 0
    _, metadata = calls.last("WhoAmI")
    assert metadata["authorization"] == f"Bearer {KEY}"
    printed = json.loads(capsys.readouterr().out)
    assert printed == {"tenant": "acme", "keyId": "", "scopes": ["admin"], "keyName": ""}


def test_the_admin_key_file_is_the_default_key(
    calls: Calls, monkeypatch: pytest.MonkeyPatch, farm_home: Path
) -> None:
    (farm_home / "admin-key").write_text("bf_from-file\n")
    monkeypatch.delenv("FARM_API_KEY")
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    assert main(["whoami"]) == 0
    assert calls.last("WhoAmI")[1]["authorization"] == "Bearer bf_from-file"


def test_no_key_anywhere_is_a_clear_error(
    calls: Calls,
    monkeypatch: pytest.MonkeyPatch,
    farm_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("FARM_API_KEY")
    monkeypatch.setenv("FARM_HOME", str(farm_home))
    assert main(["whoami"]) == 4
    assert capsys.readouterr().err.startswith("error: no API key: set FARM_API_KEY")


def test_a_grpc_error_prints_its_status_and_message(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "get", "missing"]) == 1
    assert capsys.readouterr().err == "error: NOT_FOUND: task missing not found\n"


def test_a_farm_that_is_not_running_gets_a_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FARM_URL", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("FARM_API_KEY", KEY)
    assert main(["whoami"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: UNAVAILABLE: ")
    assert "make run" in err


def test_a_part_the_farm_says_is_down_gets_no_hint_that_the_farm_is_not_running(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    # The farm answered: "is the farm running?" would send the operator the wrong way.
    assert main(["task", "get", "s3-down"]) == 1
    assert capsys.readouterr().err == f"error: UNAVAILABLE: {S3_DOWN}\n"


def test_artifact_get_writes_the_bytes_to_a_file(calls: Calls, tmp_path: Path) -> None:
    target = tmp_path / "shot.png"
    assert main(["artifact", "get", "a1", "-o", str(target)]) == 0
    assert target.read_bytes() == PNG_BYTES
    assert list(tmp_path.iterdir()) == [target]


def test_artifact_get_interrupted_while_writing_leaves_no_file_behind(
    calls: Calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C after the bytes are written, before the file is put in its place.
    def interrupted(self: Path, target: Path) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "replace", interrupted)

    assert main(["artifact", "get", "a1", "-o", str(tmp_path / "shot.png")]) == 130
    assert list(tmp_path.iterdir()) == []


def test_artifact_get_writes_the_bytes_to_stdout(
    calls: Calls, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["artifact", "get", "a1", "-o", "-"]) == 0
    assert capsysbinary.readouterr().out == PNG_BYTES


def test_artifact_get_without_output_prints_metadata(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["artifact", "get", "a1"]) == 0
    assert json.loads(capsys.readouterr().out)["contentType"] == "image/png"


def test_artifact_list_filters_by_task(calls: Calls, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["artifact", "list", "--task", "t1"]) == 0
    assert json.loads(capsys.readouterr().out)["artifacts"][0]["taskId"] == "t1"
