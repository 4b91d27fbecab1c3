"""`farm task run --from`, `task watch` and `--json` as a user meets them: on a terminal
(a pseudo-terminal, for the progress bar and the table) and through pipes."""

import json
import os
import pty
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.cli_calls import FARM, farm_command, farm_json
from tests.helpers import eventually
from tests.pages import Site

# The CLI as a user meets it: the batches and watches of test_batch_create.py and RunTask.
pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

REFUSED_URL = "gopher://example.com/"

# Runs argv[1:] with SIGINT's default action: a shell starts background jobs with
# SIGINT ignored, which every process under it would keep, and Ctrl-C is under test.
DEFAULT_SIGINT_THEN_EXEC = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def environment(farm: LocalFarm, key: str | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "FARM_URL": farm.envoy_url.removeprefix("http://"),
        "FARM_API_KEY": key or farm.admin_key,
        "COLUMNS": "160",
        "TERM": "xterm",
    }


def on_a_terminal(
    farm: LocalFarm,
    *args: str,
    when_shown: tuple[str, Callable[[], None]] | None = None,
    timeout: float = 120,
) -> tuple[int, str]:
    """Runs `farm ARGS` with stdin, stdout and stderr on a pseudo-terminal: (exit code, screen).

    `when_shown` (text, action): the action is done once the text is on the screen.
    """
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [FARM, *args], stdin=terminal, stdout=terminal, stderr=terminal, env=environment(farm)
    )
    os.close(terminal)
    screen = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command has exited and closed the terminal
                break
            if not chunk:
                break
            screen += chunk
            if when_shown and when_shown[0].encode() in screen:
                when_shown[1]()
                when_shown = None
        return process.wait(timeout=10), screen.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)


def test_a_batch_on_a_terminal_shows_progress_and_a_summary_table(
    farm: LocalFarm, site: Site, tmp_path: Path
) -> None:
    urls = tmp_path / "urls.txt"
    pages = [site.url("/page"), site.url("/page?second"), REFUSED_URL]
    urls.write_text("# three pages\n" + "\n".join(pages) + "\n\n")

    code, screen = on_a_terminal(
        farm, "task", "run", "--from", str(urls), "--content", "text", "--concurrency", "2"
    )

    assert code == 3, screen
    assert "3/3" in screen  # the progress bar's count at its end
    assert "1 not succeeded" in screen
    for url in pages:
        assert url in screen
    assert screen.count("SUCCEEDED") == 2
    assert "REFUSED" in screen and "INVALID_ARGUMENT" in screen
    assert "2 succeeded, 1 did not, of 3" in screen
    assert "\x1b[" in screen  # drawn for a terminal (cursor moves, colours)


def test_a_batch_from_stdin_through_a_pipe_prints_json_lines(farm: LocalFarm, site: Site) -> None:
    pages = [site.url("/page"), site.url("/page?again")]

    ran = subprocess.run(
        [FARM, "task", "run", "--from", "-", "--content", "text", "--json"],
        input="\n".join(pages),
        capture_output=True,
        text=True,
        env=environment(farm),
        timeout=120,
        check=False,
    )

    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(line) for line in ran.stdout.splitlines()]
    assert sorted(line["url"] for line in lines) == sorted(pages)
    assert {line["task"]["status"] for line in lines} == {"TASK_STATUS_SUCCEEDED"}
    assert ran.stderr == ""


def test_watch_on_a_terminal_follows_the_task_to_its_end(farm: LocalFarm, site: Site) -> None:
    gate = f"watch-{secrets.token_hex(4)}"
    task = farm_json(farm, "task", "create", site.url(f"/gate/{gate}"), "--content", "text")

    code, screen = on_a_terminal(
        farm, "task", "watch", task["id"], when_shown=("RUNNING", lambda: site.release(gate))
    )

    assert code == 0, screen
    lines = [line for line in screen.splitlines() if line.strip()]
    assert "RUNNING" in lines[-2]
    assert "SUCCEEDED" in lines[-1]
    assert task["id"] not in lines[-1] and not lines[-1].lstrip().startswith("{")


def test_task_run_on_a_terminal_shows_it_waits_and_piped_prints_only_the_task(
    farm: LocalFarm, site: Site
) -> None:
    gate = f"run-{secrets.token_hex(4)}"
    page = site.url(f"/gate/{gate}")

    # The page answers only once the spinner is on the screen.
    code, screen = on_a_terminal(
        farm,
        "task",
        "run",
        page,
        "--content",
        "text",
        when_shown=("Ctrl-C stops waiting", lambda: site.release(gate)),
    )
    piped = farm_command(farm, "task", "run", site.url("/page?piped"), "--content", "text")

    assert code == 0, screen
    assert "TASK_STATUS_SUCCEEDED" in screen
    assert f"running {page}" in screen
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["status"] == "TASK_STATUS_SUCCEEDED"
    assert piped.stderr == ""


def test_errors_with_json_are_json_and_exit_codes_say_why(farm: LocalFarm) -> None:
    missing = farm_command(farm, "task", "get", "0" * 32, "--json")
    wrong_key = farm_command(farm, "whoami", "--json", key="bf_not-a-key")
    usage = farm_command(farm, "task", "run", "https://example.com", "--from", "-")

    assert missing.returncode == 1
    assert json.loads(missing.stderr)["error"]["code"] == "NOT_FOUND"
    assert wrong_key.returncode == 4
    assert json.loads(wrong_key.stderr)["error"]["code"] == "UNAUTHENTICATED"
    assert usage.returncode == 2
    assert "not both" in usage.stderr


def test_ctrl_c_ends_a_batch_at_once_while_its_tasks_still_run(farm: LocalFarm, site: Site) -> None:
    # Pages that answer only when released (or after 5 minutes): without Ctrl-C the batch
    # would wait that long; with it the command ends now, exit 130, without a traceback.
    run = f"interrupted-{secrets.token_hex(4)}"
    pages = [site.url(f"/gate/{run}-{n}?wait=300") for n in range(2)]
    command = [FARM, "task", "run", "--from", "-", "--json", "--label", f"run={run}"]
    command += ["--content", "text", "--timeout-ms", "300000", "--max-attempts", "1"]
    with subprocess.Popen(
        [sys.executable, "-c", DEFAULT_SIGINT_THEN_EXEC, *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(farm),
    ) as process:
        try:
            interrupted(farm, process, pages, run)
        finally:
            if process.poll() is None:
                process.kill()
            for n in range(2):
                site.release(f"{run}-{n}")


def interrupted(
    farm: LocalFarm, process: subprocess.Popen[str], pages: list[str], run: str
) -> None:
    """Feeds the batch its pages, sends SIGINT once both run, and checks how it ended."""
    assert process.stdin is not None and process.stderr is not None
    process.stdin.write("\n".join(pages))
    process.stdin.close()
    running = ("task", "list", "--status", "running", "--label", f"run={run}")
    eventually(
        lambda: len(farm_json(farm, *running).get("tasks", [])) == 2,
        within=60,
        message="the batch's two tasks did not start",
    )
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("farm task run --from went on waiting for its tasks after Ctrl-C")
    assert code == 130
    assert "Traceback" not in process.stderr.read()
