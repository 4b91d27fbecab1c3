"""`farm task run --from FILE`: one task per URL, several at a time, with progress and a summary.

On a terminal a progress bar (stderr) follows the batch and a table (stdout) sums it
up; with --json each task is one JSON line on stdout as it ends, and nothing else.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from farm.tasks.v1 import tasks_pb2
from farm_cli.client import FarmConnection, connect
from farm_cli.commands.bulk import as_they_end, progress_bar
from farm_cli.commands.ranges import MAX_CONCURRENCY, whole_number_in
from farm_cli.commands.run_wait import run_wait_seconds
from farm_cli.commands.task_watch import ENDED, result_summary, status_name
from farm_cli.console import CliError, UsageError, message_json
from farm_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from farm_cli.retries import RateGate


@dataclass(frozen=True)
class Outcome:
    """How one URL of the batch went: its task, or the error that refused it."""

    index: int
    url: str
    task: tasks_pb2.Task | None = None
    error_code: str = ""
    error_message: str = ""

    @property
    def succeeded(self) -> bool:
        """Whether the URL's task succeeded."""
        return self.task is not None and self.task.status == tasks_pb2.TASK_STATUS_SUCCEEDED

    def status(self) -> str:
        """SUCCEEDED, FAILED, CANCELLED, or REFUSED when no task was made."""
        return status_name(self.task.status) if self.task is not None else "REFUSED"

    def detail(self) -> str:
        """What it produced, or why it did not succeed."""
        if self.task is None:
            return f"{self.error_code}: {self.error_message}"
        if self.succeeded:
            return result_summary(self.task)
        if self.task.status not in ENDED:
            return f"RunTask stopped waiting before it ended: farm task watch {self.task.id}"
        return f"{self.task.error.code}: {self.task.error.message}"

    def seconds(self) -> float | None:
        """How long the task ran, start to finish, if it ran."""
        task = self.task
        if task is None or not task.HasField("start_time") or not task.HasField("finish_time"):
            return None
        return (task.finish_time.ToMilliseconds() - task.start_time.ToMilliseconds()) / 1000

    def to_json(self) -> str:
        """One JSON line: {"url", "task"} or {"url", "error": {"code", "message"}}."""
        if self.task is not None:
            task = json.loads(message_json(self.task, indent=None))
            return json.dumps({"url": self.url, "task": task}, ensure_ascii=False)
        error = {"code": self.error_code, "message": self.error_message}
        return json.dumps({"url": self.url, "error": error}, ensure_ascii=False)


def add_batch_arguments(run: argparse.ArgumentParser) -> None:
    """Adds --from, --concurrency and --json to `task run`."""
    batch = run.add_argument_group("batch (--from)")
    batch.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="run one task per URL of FILE (one a line, # comments; - reads stdin) with the "
        "options given, showing progress and a summary; exit 3 if any did not succeed",
    )
    batch.add_argument(
        "--concurrency",
        # Checked as the options are read: refused with one URL too, not left unread.
        type=whole_number_in(1, MAX_CONCURRENCY),
        default=4,
        metavar="N",
        help=f"run at most N tasks at once (1 to {MAX_CONCURRENCY}; default 4)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="with --from: one JSON line per task as it ends, no progress or table",
    )


def read_urls(lines: Iterable[str], source: str) -> list[str]:
    """The URLs of `lines`: blank lines and # comments skipped; CliError if none."""
    urls = [line.strip() for line in lines]
    urls = [url for url in urls if url and not url.startswith("#")]
    if not urls:
        raise CliError(f"{source} holds no URLs")
    return urls


def batch_urls(args: argparse.Namespace) -> list[str]:
    """The URLs `--from` names, after checking the options go together."""
    if args.url:
        raise UsageError("give the URL as an argument or the URLs with --from, not both")
    if args.from_file == "-":
        if args.spec == "-":
            raise UsageError("--from - and --spec - cannot both read standard input")
        return read_urls(sys.stdin, "standard input")
    try:
        with Path(args.from_file).open(encoding="utf-8") as handle:
            return read_urls(handle, args.from_file)
    except OSError as error:
        raise CliError(f"cannot read {args.from_file}: {error.strerror}") from error


def run_batch(args: argparse.Namespace, template: tasks_pb2.TaskSpec, urls: list[str]) -> int:
    """RunTask for each URL, `args.concurrency` at a time; the exit code by the outcomes."""
    from farm_cli.retries import RateGate

    started = time.monotonic()
    outcomes: list[Outcome] = []
    progress = progress_bar("tasks", "not succeeded", quiet=args.json)
    # The gate stops on the way out, so Ctrl-C ends the threads' waits too.
    with RateGate() as gate, connect() as farm, progress:
        bar = progress.add_task("tasks", total=len(urls), failed=0)
        # A refused key stops the batch (raised).
        for outcome in as_they_end(
            lambda item: _run_one(farm, template, gate, *item),
            list(enumerate(urls)),
            args.concurrency,
            "farm-task",
        ):
            outcomes.append(outcome)
            if args.json:
                print(outcome.to_json(), flush=True)
            failed = sum(not o.succeeded for o in outcomes)
            progress.update(bar, advance=1, failed=failed)
    if not args.json:
        print_summary(sorted(outcomes, key=lambda o: o.index), time.monotonic() - started)
    return ExitCode.OK if all(o.succeeded for o in outcomes) else ExitCode.TASKS_FAILED


def _run_one(
    farm: FarmConnection, template: tasks_pb2.TaskSpec, gate: RateGate, index: int, url: str
) -> Outcome:
    import grpc

    from farm_cli.retries import call_retrying
    from farm_cli.rpc_errors import item_failure

    spec = tasks_pb2.TaskSpec()
    spec.CopyFrom(template)
    spec.url = url
    request = tasks_pb2.RunTaskRequest(spec=spec)
    # The task's own time and a margin, as `farm task run` (run_wait.py).
    wait_seconds = run_wait_seconds(spec, datetime.now(UTC))
    try:
        # A rate-limited RunTask made no task: it is waited out and sent again. Nothing
        # else is, as a RunTask without an idempotency key may have made one.
        task = call_retrying(
            lambda: farm.call(farm.tasks.RunTask, request, timeout=wait_seconds),
            gate,
            idempotent=False,
        )
    except grpc.RpcError as error:
        code, details = item_failure(error)
        return Outcome(index, url, error_code=code.name, error_message=details)
    return Outcome(index, url, task=task)


def print_summary(outcomes: list[Outcome], elapsed_seconds: float) -> None:
    """A table of every URL's outcome, in the file's order, and the totals under it."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="farm task run --from", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("url", overflow="fold")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("result or error", overflow="fold")
    for outcome in outcomes:
        seconds = outcome.seconds()
        style = "green" if outcome.succeeded else "red"
        table.add_row(
            str(outcome.index + 1),
            outcome.url,
            f"[{style}]{outcome.status()}[/]",
            "" if seconds is None else f"{seconds:.1f}",
            outcome.detail(),
        )
    succeeded = sum(o.succeeded for o in outcomes)
    console = Console()
    console.print(table)
    console.print(
        f"{succeeded} succeeded, {len(outcomes) - succeeded} did not, "
        f"of {len(outcomes)} in {elapsed_seconds:.1f} s",
        highlight=False,
    )
