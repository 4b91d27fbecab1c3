"""Every line of every farm process's log is one JSON object (docs/operations.md: Logs).

On the package's traced farm (conftest.py), whose processes log to files: a log
collector reads each line as JSON, the lines of the libraries the farm runs on
(uvicorn under the MCP service and the console) included.
"""

import json
import secrets

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client
from tests.helpers import eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral, pytest.mark.slow]

# The farm's own Python processes; Envoy, NATS, SeaweedFS and Prometheus log their own way.
# The agent's too: with gRPC's fork support on, its C core wrote a plain line of its own
# to stderr at start (fork_posix.cc, "skipping fork() handlers"; farm_agent/__main__.py).
FARM_PROCESSES = ("auth", "storage", "scheduler", "mcp", "console", "agent-1")


@pytest.mark.parametrize("process", FARM_PROCESSES)
def test_every_line_of_a_farm_processs_log_is_a_json_object(
    traced_farm: LocalFarm, process: str
) -> None:
    lines = (traced_farm.log_dir / f"{process}.log").read_text(encoding="utf-8").splitlines()
    # Each process logs that it serves, once started.
    assert lines
    not_json = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            not_json.append(line)
            continue
        assert entry["service"] == process.split("-")[0], line
    assert not not_json, f"{process}.log: lines that are not JSON: {not_json[:5]}"


def test_every_agent_line_about_a_cancelled_task_names_it(
    traced_farm: LocalFarm, client: Client, site: Site
) -> None:
    # docs/operations.md: `grep '"task_id": "ID"'` follows one task through the logs,
    # the agent's line of the cancel notice that stops its attempt included.
    gate = f"cancelled-{secrets.token_hex(4)}"
    task = client.create({"url": site.url(f"/gate/{gate}"), "content": {}, "maxAttempts": 1})
    try:
        client.wait_for_status(task["id"], "TASK_STATUS_RUNNING")
        cancelled = client.http.post(f"/v1/tasks/{task['id']}:cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert client.wait(task["id"])["status"] == "TASK_STATUS_CANCELLED"
    finally:
        site.release(gate)
    log = traced_farm.log_dir / "agent-1.log"

    def lines_about_the_task() -> list[dict[str, str]] | None:
        lines = [
            json.loads(line)
            for line in log.read_text(encoding="utf-8").splitlines()
            if task["id"] in line and line.startswith("{")
        ]
        stopped = any("cancel notice" in line["message"] for line in lines)
        return lines if stopped else None

    lines = eventually(lines_about_the_task, within=20, message="the agent's cancel notice line")
    unnamed = [line["message"] for line in lines if line["task_id"] != task["id"]]
    assert not unnamed, f"agent lines about the task without its task_id: {unnamed}"
