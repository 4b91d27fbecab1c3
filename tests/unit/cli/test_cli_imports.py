"""What a `farm` command imports: its own needs, not every other command's libraries.

Each check runs in a fresh interpreter, as `farm` starts, and reads sys.modules.
"""

import json
import os
import subprocess
import sys

import pytest

# Libraries only some commands use: what a call to the farm needs (grpc, the SDK's
# farm lookup, tracing), what only the SDK's HTTP transport, the retrying bulk commands
# and their tables need, the launcher's and the services' (NATS, S3, SQL, JWT,
# templates), and the MCP server's.
CALL_LIBRARIES = ("grpc", "browserfarm", "opentelemetry")
BULK_LIBRARIES = ("httpx", "tenacity", "rich")
SERVICE_LIBRARIES = ("nats", "aiohttp", "minio", "sqlalchemy", "jwt", "cryptography", "jinja2")
MCP_LIBRARIES = ("mcp", "anyio", "pydantic", "starlette", "uvicorn")

LOADED = """
import json, sys
from farm_cli.main import build_parser, main
{action}
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


def _loaded(action: str, env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages imported once `action` (Python) has run in a fresh `farm`."""
    finished = subprocess.run(
        [sys.executable, "-c", LOADED.format(action=action)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return set(json.loads(finished.stdout.splitlines()[-1]))


@pytest.mark.parametrize(
    "argv",
    [
        ["mcp"],
        ["mcp", "--tool-timeout", "5"],
        ["task", "get", "t_1"],
        ["task", "list", "--status", "queued"],
        ["session", "get", "ses_1"],
        ["whoami"],
        ["status"],
        ["up", "--agents", "1..3", "--port-offset", "1000"],
        ["down"],
        ["credential", "agent", "agent-1"],
        ["envoy-config"],
        ["nats-config", "--agents", "2"],
    ],
)
def test_building_the_parser_and_reading_a_command_line_imports_no_library_of_a_command(
    argv: list[str],
) -> None:
    loaded = _loaded(f"build_parser().parse_args({argv!r})")

    assert loaded.isdisjoint(CALL_LIBRARIES + BULK_LIBRARIES + SERVICE_LIBRARIES + MCP_LIBRARIES), (
        loaded
    )


def test_a_call_to_the_farm_imports_what_it_needs_and_no_other_library() -> None:
    # Nothing listens on port 1: the call fails at once, after the client has connected.
    env = {**os.environ, "FARM_URL": "127.0.0.1:1", "FARM_API_KEY": "key"}
    loaded = _loaded("assert main(['task', 'get', 't_1']) == 1", env)

    assert loaded.issuperset(CALL_LIBRARIES), loaded
    assert loaded.isdisjoint(BULK_LIBRARIES + SERVICE_LIBRARIES + MCP_LIBRARIES), loaded
