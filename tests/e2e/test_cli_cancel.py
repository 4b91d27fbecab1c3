"""`farm task cancel` of a whole batch on the real farm: by label in one CancelTasks call,
then from `task submit`'s output and from piped ids."""

import json
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from farm.auth.v1 import auth_pb2
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.cli_calls import farm_command, set_limits
from tests.e2e.conftest import Client, KeyFactory, fresh, http_client, new_tenant, unique_label
from tests.e2e.operator_http import audit_records, set_rate
from tests.helpers import eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

BATCH = 60
# Calls a second (and at once) the tenant's key may make: more than the listings and
# the one CancelTasks call of the batch's 60 cancels make.
RATE = 20
UNKNOWN_ID = "0" * 32
# No agent serves this region: the other tenant's task stays queued until cancelled.
NOWHERE = "cancel-nowhere"


def farm_cancel(
    farm: LocalFarm, key: str, *args: str, stdin: str = "", trace: str = ""
) -> subprocess.CompletedProcess[str]:
    """`farm task cancel ARGS` in a process of its own, `stdin` piped in, its calls in `trace`."""
    traceparent = f"00-{trace or secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    return farm_command(
        farm, "task", "cancel", *args, key=key, stdin=stdin, env={"TRACEPARENT": traceparent}
    )


def tasks_of(http: Any, labels: dict[str, str], status: str = "") -> list[dict[str, Any]]:
    """The tenant's tasks with `labels` (in `status` if given), every page."""
    tasks: list[dict[str, Any]] = []
    params = {"label": [f"{k}={v}" for k, v in labels.items()], "pageSize": 1000}
    if status:
        params["status"] = status
    for _ in range(100):
        response = http.get("/v1/tasks", params=params)
        assert response.status_code == 200, response.text
        tasks += response.json()["tasks"]
        if not response.json().get("nextPageToken"):
            return tasks
        params["pageToken"] = response.json()["nextPageToken"]
    raise AssertionError("more than 100 pages of tasks")


def outcomes(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """task id → outcome of a `task cancel --json` run."""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return {line["id"]: line["outcome"] for line in lines}


def test_a_batch_is_cancelled_by_label_in_one_call_then_found_ended_by_its_ids(
    farm: LocalFarm,
    admin: Client,
    make_key: KeyFactory,
    operator: auth_pb2.CreateApiKeyResponse,
    site: Site,
    tmp_path: Path,
) -> None:
    tenant = new_tenant("cancel")
    key = make_key("tasks.write", "tasks.read", tenant=tenant)
    set_rate(admin, key.api_key.id, per_second=RATE, burst=RATE)
    # The test's own look at the tenant's tasks spends another key's rate.
    checker = make_key("tasks.write", "tasks.read", tenant=tenant)
    # One task runs (held at a gate), the others wait in the queue.
    set_limits(farm, tenant, "--max-running-tasks", "1", key=operator.secret)
    labels = unique_label()
    gate = f"cancel-{labels['test']}"
    spec = fresh({"url": site.url(f"/gate/{gate}"), "content": {}, "labels": labels})
    specs = tmp_path / "specs.jsonl"
    specs.write_text("".join(json.dumps(spec) + "\n" for _ in range(BATCH)))
    others = admin.create({"url": site.url("/page"), "content": {}, "region": NOWHERE})
    trace = secrets.token_hex(16)
    with http_client(farm, checker.secret) as http:
        try:
            submit = farm_command(farm, "task", "submit", str(specs), key=key.secret)
            assert submit.returncode == 0, submit.stderr
            submitted = {task["id"] for task in json.loads(submit.stdout)["tasks"]}
            eventually(
                lambda: tasks_of(http, labels, "TASK_STATUS_RUNNING"),
                within=60,
                interval=0.2,
                message="no task of the batch started",
            )
            label = f"test={labels['test']}"
            by_label = farm_cancel(farm, key.secret, "--label", label, "--json", trace=trace)
            unended = tasks_of(http, labels, "TASK_STATUS_QUEUED") + tasks_of(
                http, labels, "TASK_STATUS_RUNNING"
            )
            ended = {task["id"]: task["status"] for task in tasks_of(http, labels)}
            # The batch again, from submit's output: nothing is left to cancel.
            again = farm_cancel(
                farm, key.secret, "--from", "-", "--label", label, stdin=submit.stdout
            )
            piped = "\n".join([*sorted(submitted)[:2], UNKNOWN_ID, others["id"]]) + "\n"
            unknown = farm_cancel(farm, key.secret, "--from", "-", stdin=piped)
        finally:
            site.release(gate)
            for status in ("TASK_STATUS_QUEUED", "TASK_STATUS_RUNNING"):
                for task in tasks_of(http, labels, status):
                    http.post(f"/v1/tasks/{task['id']}:cancel")
            admin.http.post(f"/v1/tasks/{others['id']}:cancel")

    assert by_label.returncode == 0, by_label.stderr
    assert by_label.stderr == ""
    cancelled = outcomes(by_label)
    assert cancelled.keys() == submitted and len(submitted) == BATCH
    assert set(cancelled.values()) <= {"cancelled", "already_ended"}
    assert unended == []
    # Held at the gate, a task ends only if cancelled (or, 30 s on, when the gate gives up).
    assert all(
        ended[id_] == "TASK_STATUS_CANCELLED" for id_, o in cancelled.items() if o == "cancelled"
    )
    assert list(cancelled.values()).count("cancelled") > BATCH // 2
    # One CancelTasks call (not 60 CancelTasks), audited task by task as CancelTask is.
    records = audit_records(admin, trace, "OK", tenant)
    assert {record["rpc"] for record in records} == {"/farm.tasks.v1.TaskService/CancelTasks"}
    assert {record["target"] for record in records} == submitted
    assert {record["message"] for record in records} <= {
        f"cancelled (one of a batch of {BATCH})",
        f"had ended already (one of a batch of {BATCH})",
    }

    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert sorted(lines[:-1]) == sorted(
        f"{id_}  already ended ({ended[id_].removeprefix('TASK_STATUS_')})" for id_ in submitted
    )
    assert lines[-1].startswith(f"0 cancelled, {BATCH} already ended, 0 not found, 0 failed, of ")

    assert unknown.returncode == 3, unknown.stderr
    first, second = sorted(submitted)[:2]
    assert unknown.stdout.splitlines()[:4] == [
        f"{first}  already ended ({ended[first].removeprefix('TASK_STATUS_')})",
        f"{second}  already ended ({ended[second].removeprefix('TASK_STATUS_')})",
        f"{UNKNOWN_ID}  not found",
        f"{others['id']}  not found",  # another tenant's
    ]
