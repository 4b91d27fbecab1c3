"""`farm task submit FILE`: task specs from JSON Lines, queued with CreateTasks in batches.

A batch the farm rate-limits was refused at the edge and queued nothing: it is sent
again after the Retry-After, as often as it takes (farm_cli.retries), with a line on
stderr for each wait. After UNAVAILABLE the batch may have been queued with its
answer lost, so it is sent again only when every spec of it carries an
idempotencyKey, which makes the repeat answer the same tasks instead of queuing them
twice. The file's own keys are kept; --idempotency-prefix gives every other spec the
key PREFIX:LINE (its line in the file), so that the same command run again after a
failure, or a kill, answers the specs already queued with their tasks and queues the
rest. Without it submit adds no key: a key shows in every task printed (its spec's
idempotencyKey), and a random one would not make a rerun safe anyway.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from farm.tasks.v1 import tasks_pb2
from farm_cli.client import FarmConnection, connect
from farm_cli.commands.task_spec import spec_from_json
from farm_cli.console import CliError, UsageError, print_message
from farm_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from browserfarm.errors import FarmError
    from farm_cli.retries import RateGate

PREFIX_OPTION = "--idempotency-prefix"


def add_submit_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `task submit`."""
    submit = verbs.add_parser(
        "submit",
        help="queue the task specs of a JSON Lines file (one TaskSpec a line) in batches; "
        "exit 3 if any was refused",
    )
    submit.add_argument("file", help='the file, or "-" for standard input')
    submit.add_argument(
        PREFIX_OPTION,
        dest="key_prefix",
        metavar="PREFIX",
        help="give each spec without an idempotencyKey the key PREFIX:LINE (LINE: its line "
        "in the file), so that the same command run again queues no spec twice",
    )
    submit.set_defaults(run=submit_tasks)


def read_specs(lines: Iterable[str], source: str, key_prefix: str = "") -> list[tasks_pb2.TaskSpec]:
    """The TaskSpecs of JSON `lines` (blank ones skipped); CliError names a bad line.

    With `key_prefix`, a spec without an idempotencyKey gets `line_key(key_prefix, N)`,
    N its line number; UsageError if a key would be too long for the farm.
    """
    specs = []
    last_keyed = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        spec = spec_from_json(line, f"{source} line {number}")
        if key_prefix and not spec.idempotency_key:
            spec.idempotency_key = line_key(key_prefix, number)
            last_keyed = number
        specs.append(spec)
    if not specs:
        raise CliError(f"{source} holds no task specs")
    if last_keyed:
        _check_key_length(key_prefix, last_keyed, source)
    return specs


def line_key(prefix: str, line: int) -> str:
    """The idempotency key --idempotency-prefix gives the spec of `line`: `PREFIX:LINE`.

    The colon keeps two prefixes' keys apart (`run1:11` is not `run11:1`).
    """
    return f"{prefix}:{line}"


def _check_key_length(prefix: str, line: int, source: str) -> None:
    """UsageError unless the key of `line` (the longest given) fits the farm's limit."""
    from farm_core.idempotency import MAX_IDEMPOTENCY_KEY_CHARS

    key = line_key(prefix, line)
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        room = MAX_IDEMPOTENCY_KEY_CHARS - (len(key) - len(prefix))
        raise UsageError(
            f"{PREFIX_OPTION} is too long ({len(prefix)} characters): the key of {source} "
            f"line {line} would be {len(key)} characters, and the farm takes at most "
            f"{MAX_IDEMPOTENCY_KEY_CHARS}; give a prefix of at most {room}"
        )


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
    import grpc

    from browserfarm.batches import call_spans
    from farm_cli.retries import RateGate

    if args.key_prefix == "":
        raise UsageError(f"{PREFIX_OPTION} must not be empty")
    prefix = args.key_prefix or ""
    from_stdin = args.file == "-"
    specs = (
        read_specs(sys.stdin, "standard input", prefix)
        if from_stdin
        else _read_file(args.file, prefix)
    )
    answer = tasks_pb2.CreateTasksResponse()
    with RateGate() as gate, connect() as farm:
        for span in call_spans([spec.ByteSize() for spec in specs]):
            try:
                batch = _create(farm, specs, span, gate, quiet=args.json)
            except grpc.RpcError:
                _print_stopped(answer, span, len(specs), prefix, quiet=args.json)
                raise
            except KeyboardInterrupt:
                # Ctrl-C too: the batches already queued are named before the exit.
                stopped = "were being sent when interrupted"
                _print_stopped(answer, span, len(specs), prefix, quiet=args.json, why=stopped)
                raise
            answer.tasks.extend(batch.tasks)
            answer.errors.extend(renumbered(error, span.start) for error in batch.errors)
    print_message(answer)
    return ExitCode.TASKS_FAILED if answer.errors else ExitCode.OK


def _print_stopped(
    answer: tasks_pb2.CreateTasksResponse,
    failed: range,
    total: int,
    prefix: str,
    *,
    quiet: bool,
    why: str = "failed (below)",
) -> None:
    """The answers of the batches before `failed` on stdout; on stderr, which specs failed.

    So a file that stops half-way leaves no task the caller cannot name: the output
    goes to `farm task cancel --from` or is cut from the file before a rerun. With a
    `prefix` (--idempotency-prefix) a line on stderr says a rerun with it is safe.
    """
    if failed.start > 0:
        print_message(answer)
    if quiet:
        return
    if failed.start > 0:
        rest = f"; {_specs(range(failed.stop, total))} not sent" if failed.stop < total else ""
        print(
            f"{_specs(range(failed.start))} of {total} answered (above); "
            f"{_specs(failed)} {why}{rest}",
            file=sys.stderr,
            flush=True,
        )
    if prefix:
        print(
            f"the same command again ({PREFIX_OPTION} {shlex.quote(prefix)}) queues the rest "
            "and answers the specs already queued with their tasks: none is queued twice",
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
    from farm_cli.retries import call_retrying

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
    from browserfarm.errors import RateLimited

    if isinstance(failure, RateLimited):
        why = f"rate-limited (Retry-After {failure.retry_after:g} s)"
    else:
        why = f"{failure.code.name}: {failure.message}"
    again = "them" if len(span) > 1 else "it"
    return f"{_specs(span)} of {total}: {why}; sending {again} again in {seconds:.1f} s"


def _specs(span: range) -> str:
    """`specs 3-5` or `spec 3` (numbered from 1) for the specs at `span`."""
    return f"specs {span.start + 1}-{span.stop}" if len(span) > 1 else f"spec {span.start + 1}"


def _read_file(path: str, key_prefix: str) -> list[tasks_pb2.TaskSpec]:
    try:
        with Path(path).open(encoding="utf-8") as handle:
            return read_specs(handle, path, key_prefix)
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from error
