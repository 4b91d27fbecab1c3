"""The user CLI against in-process fake services: what it sends, prints and exits with."""

import json
from pathlib import Path

import jwt
import pytest

from farm.tasks.v1 import tasks_pb2
from farm_cli.commands.task_watch import event_line
from farm_cli.main import main
from farm_core.free_ports import free_port
from farm_core.identity import CredentialRole, IdentitySigner, credential_id
from farm_core.identity_keys import new_private_key, private_pem
from farm_core.key_limits import MAX_RATE
from tests.unit.cli.conftest import KEY
from tests.unit.cli.fake_calls import Calls
from tests.unit.cli.fake_services import PNG_BYTES, S3_DOWN, STORAGE_WAIT


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


def test_task_create_sends_the_spec_and_prints_the_queued_task(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "create", "https://example.com", "--pdf", "--label", "a=b"]) == 0
    request, _ = calls.last("CreateTask")
    assert request.spec.url == "https://example.com" and request.spec.HasField("pdf")
    printed = json.loads(capsys.readouterr().out)
    assert printed["status"] == "TASK_STATUS_QUEUED"
    assert printed["spec"]["labels"] == {"a": "b"}


def test_task_submit_sends_the_files_specs_in_batches_and_numbers_errors_in_the_file(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    urls = ["https://example.com/"] * 1002
    urls[1000] = "ftp://example.com/"
    specs = tmp_path / "specs.jsonl"
    specs.write_text("".join(json.dumps({"url": url, "screenshot": {}}) + "\n" for url in urls))
    earlier = len(calls.seen)

    assert main(["task", "submit", str(specs)]) == 3

    batches = [request for name, request, _ in calls.seen[earlier:] if name == "CreateTasks"]
    assert [len(batch.requests) for batch in batches] == [1000, 2]
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["tasks"]) == 1001
    assert printed["errors"] == [
        {
            "index": 1000,
            "field": "requests[1000].url",
            "code": "INVALID_ARGUMENT",
            "message": "requests[1000].url: must be http or https",
        }
    ]


def test_task_submit_keeps_each_call_under_envoys_body_limit(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    spec = {"url": "https://example.com/", "script": {"source": "() => 1" + " " * 200_000}}
    specs = tmp_path / "specs.jsonl"
    specs.write_text((json.dumps(spec) + "\n") * 9)
    earlier = len(calls.seen)

    assert main(["task", "submit", str(specs)]) == 0

    batches = [request for name, request, _ in calls.seen[earlier:] if name == "CreateTasks"]
    assert [len(batch.requests) for batch in batches] == [3, 3, 3]
    assert len(json.loads(capsys.readouterr().out)["tasks"]) == 9


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (
            '{"url": "https://example.com/"}\n{"address": "x"}\n',
            "line 2: address: TaskSpec has no such field\n",
        ),
        # One line naming the field, with the closest one, not protobuf's two-line text.
        (
            '{"url": "https://example.com/", "screenshot": {"fullpage": true}}\n',
            "line 1: screenshot.fullpage: ScreenshotOptions has no such "
            "field; did you mean 'fullPage'?\n",
        ),
    ],
    ids=["unknown field", "near miss"],
)
def test_task_submit_names_the_line_and_field_that_is_not_a_task_spec(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path, lines: str, error: str
) -> None:
    specs = tmp_path / "specs.jsonl"
    specs.write_text(lines)
    earlier = len(calls.seen)

    assert main(["task", "submit", str(specs)]) == 1

    assert capsys.readouterr().err == f"error: {specs} {error}"
    assert calls.seen[earlier:] == []


def test_task_submit_reads_a_line_as_the_sdk_reads_a_spec(
    calls: Calls, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    specs = tmp_path / "specs.jsonl"
    specs.write_text('{"url": "https://example.com/", "screenshot": {"format": "jpeg"}}\n')

    assert main(["task", "submit", str(specs)]) == 0

    request, _ = calls.last("CreateTasks")
    assert request.requests[0].screenshot.format == tasks_pb2.IMAGE_FORMAT_JPEG


def test_task_run_exits_0_when_the_task_succeeded(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "run", "https://example.com"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "TASK_STATUS_SUCCEEDED"


def test_task_run_of_a_task_still_queued_when_runtask_stops_waiting_is_a_timeout(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    # Not exit 3 ("did not succeed"): the task may still succeed; the error says so.
    assert main(["task", "run", "https://example.com/unended"]) == 1
    printed = capsys.readouterr()
    assert json.loads(printed.out)["status"] == "TASK_STATUS_QUEUED"
    assert printed.err.startswith("error: DEADLINE_EXCEEDED: task t1 is still QUEUED")
    assert "farm task watch t1" in printed.err

    assert main(["task", "run", "https://example.com/unended", "--json"]) == 1
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["code"] == "DEADLINE_EXCEEDED"
    assert error["message"].startswith("task t1 is still QUEUED")


def test_task_list_all_follows_every_page(calls: Calls, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["task", "list", "--all", "--status", "failed", "--label", "job=x"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [task["id"] for task in printed["tasks"]] == ["t1", "t2", "t3"]
    request, _ = calls.last("ListTasks")
    assert request.status == tasks_pb2.TASK_STATUS_FAILED
    assert list(request.label) == ["job=x"]


def test_task_list_prints_one_page_with_its_token(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "list", "--page-size", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["nextPageToken"] == "page2"
    assert calls.last("ListTasks")[0].page_size == 2


def test_task_cancel_sends_the_id_and_prints_the_task(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "cancel", "t9"]) == 0
    assert calls.last("CancelTask")[0].id == "t9"
    printed = json.loads(capsys.readouterr().out)
    assert (printed["id"], printed["status"]) == ("t9", "TASK_STATUS_CANCELLED")


def test_task_watch_prints_one_event_a_line(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "watch", "t1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["status"] for line in lines] == [
        "TASK_STATUS_QUEUED",
        "TASK_STATUS_RUNNING",
        "TASK_STATUS_SUCCEEDED",
    ]


def test_task_get_prints_what_a_running_task_waits_for(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "get", "waiting"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["status"], printed["statusMessage"]) == ("TASK_STATUS_RUNNING", STORAGE_WAIT)


def test_task_watch_json_lines_carry_what_the_attempt_waits_for(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", "watch", "waiting", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [event["task"]["statusMessage"] for event in events] == ["", STORAGE_WAIT, ""]


def test_task_watch_lines_on_a_terminal_say_what_the_attempt_waits_for() -> None:
    task = tasks_pb2.Task(
        status=tasks_pb2.TASK_STATUS_RUNNING, attempts=1, agent_id="a1", status_message=STORAGE_WAIT
    )
    event = tasks_pb2.TaskEvent(status=task.status, task=task)
    event.time.FromSeconds(0)

    assert event_line(event) == f"00:00:00  RUNNING    attempt 1  on a1  {STORAGE_WAIT}"


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


def test_key_create_prints_the_secret_once_with_a_warning(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["key", "create", "ci", "--scope", "tasks.read", "tasks.write", "--scope", "admin"]
    assert main(argv) == 0
    request, _ = calls.last("CreateApiKey")
    assert list(request.scopes) == ["tasks.read", "tasks.write", "admin"]
    captured = capsys.readouterr()
    assert json.loads(captured.out)["secret"] == "bf_new-secret"
    assert "bf_new-secret" in captured.err and "NEVER shown again" in captured.err


@pytest.mark.parametrize(
    "argv", [["key", "create", "ci", "--scope", "admin"], ["key", "rotate", "key7"]]
)
def test_key_secret_with_json_is_stdout_alone_without_the_warning(
    calls: Calls, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["secret"]
    assert captured.err == ""


def test_key_create_needs_a_scope(calls: Calls) -> None:
    with pytest.raises(SystemExit):
        main(["key", "create", "ci"])


def test_key_list_and_revoke(calls: Calls, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["key", "list"]) == 0
    assert json.loads(capsys.readouterr().out)["apiKeys"][0]["id"] == "key1"
    assert main(["key", "revoke", "key7"]) == 0
    assert calls.last("RevokeApiKey")[0].id == "key7"


def test_credential_revoke_sends_an_id_or_a_subject_never_the_credential(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = IdentitySigner(private_pem(new_private_key()))
    credential = signer.credential(CredentialRole.AGENT, "pi-3")

    assert main(["credential", "revoke", credential]) == 0
    assert calls.last("RevokeCredential")[0].id == credential_id(credential)
    assert json.loads(capsys.readouterr().out)["id"] == credential_id(credential)
    assert main(["credential", "revoke", "agent:pi-3"]) == 0
    assert calls.last("RevokeCredential")[0].subject == "agent:pi-3"
    assert main(["credential", "revoke", "cred_1_abc"]) == 0
    assert calls.last("RevokeCredential")[0].id == "cred_1_abc"
    without_id = jwt.encode({"sub": "agent:old"}, "s" * 32, algorithm="HS256")
    assert main(["credential", "revoke", without_id]) == 2
    assert "revoke its subject" in capsys.readouterr().err


def test_key_rotate_shows_the_new_secret_once_and_sends_the_grace(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["key", "rotate", "key7", "--grace-seconds", "0"]) == 0
    request, _ = calls.last("RotateApiKey")
    assert request.id == "key7" and request.HasField("grace_seconds")
    assert request.grace_seconds == 0
    assert "bf_rotated-secret" in capsys.readouterr().err
    assert main(["key", "rotate", "key7"]) == 0
    assert not calls.last("RotateApiKey")[0].HasField("grace_seconds")


def test_key_rate_sends_only_the_limits_given(calls: Calls) -> None:
    assert main(["key", "rate", "key7", "--burst", "9"]) == 0
    request, _ = calls.last("UpdateApiKey")
    assert request.HasField("rate_limit_burst") and request.rate_limit_burst == 9
    assert not request.HasField("rate_limit_per_second")


def test_the_largest_numbers_that_fit_their_fields_are_sent(calls: Calls) -> None:
    # A key's rate stops at auth's bound (farm_core.key_limits), below its int32 field's.
    assert main(["key", "rate", "key7", "--burst", str(MAX_RATE)]) == 0
    assert calls.last("UpdateApiKey")[0].rate_limit_burst == MAX_RATE
    assert main(["tenant", "limits", "acme", "--max-artifact-bytes", str(2**63 - 1)]) == 0
    assert calls.last("UpdateTenantLimits")[0].max_artifact_bytes == 2**63 - 1


def test_tenant_limits_sends_only_the_quotas_given(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tenant", "limits", "acme", "--max-queued-tasks", "0"]) == 0
    request, _ = calls.last("UpdateTenantLimits")
    assert request.name == "acme" and request.HasField("max_queued_tasks")
    assert not request.HasField("max_artifact_bytes")
    assert json.loads(capsys.readouterr().out)["name"] == "acme"
    assert main(["tenant", "get", "acme"]) == 0
    assert calls.last("GetTenant")[0].name == "acme"


def test_tenant_limits_without_a_quota_is_refused_before_any_call(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(calls.seen)
    assert main(["tenant", "limits", "acme"]) == 2
    assert "give at least one of --max-queued-tasks" in capsys.readouterr().err
    assert calls.seen[before:] == []


def test_webhook_secret_prints_it_and_rotates_only_when_asked(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["webhook", "secret", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"secret": "whsec_current"}
    assert calls.last("GetWebhookSecret")[1]["authorization"] == f"Bearer {KEY}"
    assert main(["webhook", "secret", "--rotate"]) == 0
    assert json.loads(capsys.readouterr().out) == {"secret": "whsec_new"}
    calls.last("RotateWebhookSecret")
