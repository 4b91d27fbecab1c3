"""`farm task submit FILE`: task specs from JSON Lines, queued with CreateTasks in batches.

A batch the farm rate-limits was refused at the edge and queued nothing: it is sent
again after the Retry-After, as often as it takes (farm_cli.retries), with a line on
stderr for each wait. After UNAVAILABLE the batch may have been queued with its
answer lost, so it is sent again only when every spec of it carries an
idempotencyKey (the file's own: submit adds none), which makes the repeat answer the
same tasks instead of queuing them twice.
"""

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import grpc
from google.protobuf import json_format

from browserfarm.batches import call_spans
from browserfarm.errors import FarmError, RateLimited
from farm.tasks.v1 import tasks_pb2
from farm_cli.client import FarmConnection, connect
from farm_cli.console import CliError, print_message
from farm_cli.exit_codes import ExitCode
from farm_cli.retries import RateGate, call_retrying


def add_submit_parser(verbs: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `task submit`."""
    submit = verbs.add_parser(
        "submit",
        help="queue the task specs of a JSON Lines file (one TaskSpec a line) in batches; "
        "exit 3 if any was refused",
    )
    submit.add_argument("file", help='the file, or "-" for standard input')
    submit.set_defaults(run=submit_tasks)


def read_specs(lines: Iterable[str], source: str) -> list[tasks_pb2.TaskSpec]:
    """The TaskSpecs of JSON `lines` (blank ones skipped); CliError names a bad line."""
    specs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            specs.append(json_format.Parse(line, tasks_pb2.TaskSpec()))
        except json_format.ParseError as error:
            raise CliError(f"{source} line {number}: not a TaskSpec: {error}") from error
    if not specs:
        raise CliError(f"{source} holds no task specs")
    return specs


def renumbered(error: tasks_pb2.CreateTasksError, offset: int) -> tasks_pb2.CreateTasksError:
    """`error` of a batch that starts at spec `offset`, numbered in the whole file."""
    local, whole = f"requests[{error.index}]", f"requests[{error.index + offset}]"
    return tasks_pb2.CreateTasksError(
        index=error.index + offset,
        field=error.field.replace(local, whole, 1),
        code=error.code,
        message=error.message.replace(local, whole, 1),
    )


def submit_tasks(args: argparse.Namespace) -> int:
    """CreateTasks for each batch of specs; prints every task and error, in the file's order.

    The batches are the SDK's create_tasks' (1,000 specs and 768 KiB at most); each
    is sent again as the module says, with a line on stderr (none with --json).
    """
    from_stdin = args.file == "-"
    specs = read_specs(sys.stdin, "standard input") if from_stdin else _read_file(args.file)
    answer = tasks_pb2.CreateTasksResponse()
    gate = RateGate()
    with connect() as farm:
        for span in call_spans([spec.ByteSize() for spec in specs]):
            try:
                batch = _create(farm, specs, span, gate, quiet=args.json)
            except grpc.RpcError:
                _print_sent_before(answer, span, len(specs), quiet=args.json)
                raise
            answer.tasks.extend(batch.tasks)
            answer.errors.extend(renumbered(error, span.start) for error in batch.errors)
    print_message(answer)
    return ExitCode.TASKS_FAILED if answer.errors else ExitCode.OK


def _print_sent_before(
    answer: tasks_pb2.CreateTasksResponse, failed: range, total: int, *, quiet: bool
) -> None:
    """The answers of the batches before `failed` on stdout; on stderr, which specs failed.

    So a file that stops half-way leaves no task the caller cannot name: the output
    goes to `farm task cancel --from` or is cut from the file before a rerun.
    """
    if failed.start == 0:
        return
    print_message(answer)
    if not quiet:
        rest = f"; {_specs(range(failed.stop, total))} not sent" if failed.stop < total else ""
        print(
            f"{_specs(range(failed.start))} of {total} answered (above); "
            f"{_specs(failed)} failed (below){rest}",
            file=sys.stderr,
            flush=True,
        )


def _create(
    farm: FarmConnection,
    specs: list[tasks_pb2.TaskSpec],
    span: range,
    gate: RateGate,
    *,
    quiet: bool,
) -> tasks_pb2.CreateTasksResponse:
    """CreateTasks' answer for the specs at `span`, sent again as the module says."""
    batch = specs[span.start : span.stop]
    request = tasks_pb2.CreateTasksRequest(requests=batch)

    def say_wait(failure: FarmError, seconds: float) -> None:
        print(wait_line(failure, seconds, span, len(specs)), file=sys.stderr, flush=True)

    created: tasks_pb2.CreateTasksResponse = call_retrying(
        lambda: farm.call(farm.tasks.CreateTasks, request),
        gate,
        idempotent=all(spec.idempotency_key for spec in batch),
        on_wait=None if quiet else say_wait,
    )
    return created


def wait_line(failure: FarmError, seconds: float, span: range, total: int) -> str:
    """`specs 1001-2000 of 2500: rate-limited (Retry-After 1 s); sending them again in 1.0 s`."""
    if isinstance(failure, RateLimited):
        why = f"rate-limited (Retry-After {failure.retry_after:g} s)"
    else:
        why = f"{failure.code.name}: {failure.message}"
    again = "them" if len(span) > 1 else "it"
    return f"{_specs(span)} of {total}: {why}; sending {again} again in {seconds:.1f} s"


def _specs(span: range) -> str:
    """`specs 3-5` or `spec 3` (numbered from 1) for the specs at `span`."""
    return f"specs {span.start + 1}-{span.stop}" if len(span) > 1 else f"spec {span.start + 1}"


def _read_file(path: str) -> list[tasks_pb2.TaskSpec]:
    try:
        with Path(path).open(encoding="utf-8") as handle:
            return read_specs(handle, path)
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from error
