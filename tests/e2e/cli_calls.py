"""The `farm` command line against the e2e farm: run as a process or in this one; its output."""

import contextlib
import functools
import io
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from unittest import mock

from farm_cli.launcher.config import find_project_root
from farm_cli.launcher.farm import LocalFarm
from farm_cli.main import main as cli_main

FARM = str(find_project_root(Path(__file__).parent) / ".venv" / "bin" / "farm")


def farm_command(
    farm: LocalFarm,
    *args: str,
    key: str | None = None,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`farm ARGS` against the test farm: `key` (default: its admin key), `stdin`, `env`."""
    environment = {
        **os.environ,
        "FARM_URL": farm.envoy_url.removeprefix("http://"),
        "FARM_API_KEY": key or farm.admin_key,
        **(env or {}),
    }
    run = functools.partial(subprocess.run, capture_output=True, text=True, check=False)
    return run([FARM, *args], input=stdin, env=environment, timeout=120)


def farm_in_process(
    farm: LocalFarm, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`farm ARGS` as farm_command runs it, but by the CLI's main() in this process.

    For tests of what a command does, not of the process: it saves the ~1 s a new Python
    takes to import the CLI. Its environment and standard streams are swapped for the
    call's length, so calls must not overlap (no threads).
    """
    environment = {
        "FARM_URL": farm.envoy_url.removeprefix("http://"),
        "FARM_API_KEY": key or farm.admin_key,
    }
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, environment),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            returncode = cli_main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            returncode = exit_.code if isinstance(exit_.code, int) else 2
    return subprocess.CompletedProcess(
        [FARM, *args], returncode, stdout.getvalue(), stderr.getvalue()
    )


def printed(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a `farm` command printed, after checking it succeeded."""
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def farm_json(farm: LocalFarm, *args: str, key: str | None = None) -> Any:
    """The JSON `farm ARGS` printed (run as farm_command runs it), after checking it succeeded."""
    return printed(farm_command(farm, *args, key=key))


def in_turn(farm: LocalFarm, *commands: tuple[str, ...], key: str) -> list[Any]:
    """Runs several `farm` commands with one key in this process, one after the other."""
    return [farm_in_process(farm, *command, key=key) for command in commands]


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a refused command, after checking it failed cleanly.

    Its exit code is 4 for a refused key (UNAUTHENTICATED, PERMISSION_DENIED), else 1.
    """
    by_key = result.stderr.startswith(("error: UNAUTHENTICATED", "error: PERMISSION_DENIED"))
    assert result.returncode == (4 if by_key else 1), (result.returncode, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


def set_limits(farm: LocalFarm, tenant: str, *options: str, key: str) -> Any:
    """`farm tenant limits TENANT OPTIONS` with `key` (in this process); the tenant it printed."""
    return printed(farm_in_process(farm, "tenant", "limits", tenant, *options, key=key))


def set_rate(farm: LocalFarm, key_id: str, *options: str, key: str) -> Any:
    """`farm key rate KEY_ID OPTIONS` with `key` (in this process); the API key it printed."""
    return printed(farm_in_process(farm, "key", "rate", key_id, *options, key=key))
