"""Ctrl-C while a bulk command's threads wait out the farm's Retry-After: it stops at once.

The command runs as its own process (Python joins a command's worker threads before it
exits, which a call in the test's process would not show), against a fake scheduler
that rate-limits every call with a Retry-After the CLI waits out.
"""

import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from farm.tasks.v1 import tasks_pb2_grpc
from farm_core.free_ports import free_port

# Under the CLI's longest Retry-After it waits out (ClientOptions.max_retry_after, 60 s).
RETRY_AFTER_SECONDS = 50
# Well under the Retry-After: a command still waiting it out has not stopped at once.
EXIT_WITHIN_SECONDS = 20
HELD = "the gate is held"
# `farm ARGS...` with Python's own SIGINT handler (a shell's background job inherits
# SIGINT ignored), saying on stderr when a rate limit shut the command's gate: from then
# on a thread waits out the Retry-After, and Ctrl-C is sent.
FARM_TELLING_OF_HOLDS = f"""
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from farm_cli import retries
from farm_cli.main import main

hold = retries.RateGate.hold

def hold_and_tell(gate, seconds):
    hold(gate, seconds)
    print({HELD!r}, file=sys.stderr, flush=True)

retries.RateGate.hold = hold_and_tell
sys.exit(main(sys.argv[1:]))
"""


class RateLimitedTasks(tasks_pb2_grpc.TaskServiceServicer):
    """Rate-limits every RunTask, GetTask, CancelTask and CancelTasks."""

    def _rate_limited(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.set_trailing_metadata((("retry-after", str(RETRY_AFTER_SECONDS)),))
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "over its rate limit")

    RunTask = GetTask = CancelTask = CancelTasks = _rate_limited


@pytest.fixture(scope="module")
def rate_limited_port() -> Iterator[int]:
    """The port of a fake scheduler that rate-limits every call."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    # A partial fake: the generated base answers UNIMPLEMENTED for the RPCs it leaves out.
    tasks_pb2_grpc.add_TaskServiceServicer_to_server(RateLimitedTasks(), server)  # type: ignore[abstract]
    port = free_port()
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    yield port
    server.stop(grace=None)


@pytest.mark.parametrize(
    "argv",
    [
        ["task", "run", "--from", "-", "--json"],
        ["task", "cancel", "t_1", "t_2", "--json"],
    ],
    ids=["task-run-from", "task-cancel-of-many"],
)
def test_ctrl_c_while_a_retry_after_is_waited_out_exits_130_at_once(
    rate_limited_port: int, argv: list[str]
) -> None:
    environment = {
        "PATH": "/usr/bin:/bin",
        "FARM_URL": f"http://127.0.0.1:{rate_limited_port}",
        "FARM_API_KEY": "bf_cli-test-key",
    }
    with subprocess.Popen(
        [sys.executable, "-c", FARM_TELLING_OF_HOLDS, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    ) as process:
        try:
            out, err = interrupted_once_held(process)
        finally:
            if process.poll() is None:
                process.kill()

    assert process.returncode == 130
    assert (out, err) == ("", "")


def interrupted_once_held(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGINT once a rate limit shut the command's gate; what it printed after that."""
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    process.stdin.write("https://example.com/\n")
    process.stdin.close()
    # Bounded by the test's timeout: the fake rate-limits the command's first call.
    assert process.stderr.readline() == f"{HELD}\n"
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=EXIT_WITHIN_SECONDS)
    except subprocess.TimeoutExpired:
        pytest.fail("after Ctrl-C the command went on waiting out the farm's Retry-After")
    # A second thread's rate limit may have been told before the signal.
    told_after = process.stderr.read().replace(f"{HELD}\n", "")
    return process.stdout.read(), told_after
