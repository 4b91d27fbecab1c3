"""Every line of every farm process's log is one JSON object (docs/operations.md: Logs).

On the package's traced farm (conftest.py), whose processes log to files: a log
collector reads each line as JSON, the lines of the libraries the farm runs on
(uvicorn under the MCP service and the console) included.
"""

import json

import pytest

from farm_cli.launcher.farm import LocalFarm

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral, pytest.mark.slow]

# The farm's own Python processes; Envoy, NATS, SeaweedFS and Prometheus log their own way.
# Not the agent: gRPC's C core writes a plain line of its own to stderr now and then
# when the agent starts a child while another thread is in gRPC (fork_posix.cc).
FARM_PROCESSES = ("auth", "storage", "scheduler", "mcp", "console")


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
