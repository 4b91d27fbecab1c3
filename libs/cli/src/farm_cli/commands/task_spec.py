"""The TaskSpec a `farm task create|run` command line asks for: flags, or a JSON spec file."""

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from farm.tasks.v1 import tasks_pb2
from farm_cli.commands.ranges import (
    WHOLE_NUMBER,
    whole_number,
    whole_number_in,
    zero_or_whole_number_in,
)
from farm_cli.commands.task_action import add_action_arguments, set_action
from farm_cli.commands.task_text import (
    idempotency_key,
    labels_of,
    region,
    saved_name,
    spec_label,
    url,
)
from farm_cli.console import CliError, UsageError
from farm_core.task_limits import (
    MAX_CACHE_TTL_SECONDS,
    MAX_DEADLINE_AHEAD,
    MAX_TIMEOUT_MS,
    MAX_VIEWPORT_PIXELS,
    MIN_TIMEOUT_MS,
)

Action = Literal["screenshot", "pdf", "content", "extract", "script"]
ACTIONS: tuple[Action, ...] = ("screenshot", "pdf", "content", "extract", "script")
PRIORITIES = {
    "high": tasks_pb2.PRIORITY_HIGH,
    "normal": tasks_pb2.PRIORITY_NORMAL,
    "low": tasks_pb2.PRIORITY_LOW,
}
MAX_ATTEMPTS = 10
"""The farm's default FARM_SCHEDULER_MAX_ATTEMPTS_CAP: a farm with a lower cap refuses more."""


def viewport(text: str) -> tasks_pb2.Viewport:
    """A viewport from WIDTHxHEIGHT, e.g. 1280x800."""
    width, separator, height = text.lower().partition("x")
    if not separator or not WHOLE_NUMBER.fullmatch(width) or not WHOLE_NUMBER.fullmatch(height):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x800, got {text!r}")
    sides = (int(width), int(height))
    if not all(1 <= side <= MAX_VIEWPORT_PIXELS for side in sides):
        raise argparse.ArgumentTypeError(
            f"width and height must be from 1 to {MAX_VIEWPORT_PIXELS}, got {text!r}"
        )
    return tasks_pb2.Viewport(width=int(width), height=int(height))


def label(text: str) -> tuple[str, str]:
    """A label from key=value."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def add_label_argument(
    parser: argparse.ArgumentParser,
    help_text: str,
    pair: Callable[[str], tuple[str, str]] = spec_label,
) -> None:
    """Adds the repeatable --label KEY=VALUE, into args.labels as (key, value) pairs.

    `pair` parses and checks each: a label of a spec by default, or `label_filter`.
    """
    parser.add_argument(
        "--label",
        dest="labels",
        type=pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help_text,
    )


def deadline(text: str) -> datetime:
    """When the task must have ended: an RFC 3339 time with its zone, or +SECONDS from now.

    It must be in the future and at most MAX_DEADLINE_AHEAD ahead, as the farm checks
    (by this machine's clock).
    """
    now = datetime.now(UTC)
    moment: datetime | None
    if text.startswith("+") and text[1:].isascii() and text[1:].isdigit():
        ahead = int(text[1:])
        most = int(MAX_DEADLINE_AHEAD.total_seconds())
        if not 1 <= ahead <= most:
            raise argparse.ArgumentTypeError(f"+SECONDS must be from 1 to {most}, got {text!r}")
        return now + timedelta(seconds=ahead)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"expected a time with its zone such as 2026-01-31T18:00:00Z, or +SECONDS, got {text!r}"
        )
    if moment <= now:
        raise argparse.ArgumentTypeError(f"must be in the future, got {text!r}")
    if moment > now + MAX_DEADLINE_AHEAD:
        hours = int(MAX_DEADLINE_AHEAD.total_seconds() // 3600)
        raise argparse.ArgumentTypeError(f"must be at most {hours} hours ahead, got {text!r}")
    return moment


def add_task_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that describe a task (shared by `task create` and `task run`)."""
    parser.add_argument("url", nargs="?", type=url, help="the page to open (http or https)")
    add_action_arguments(parser)
    parser.add_argument("--profile", type=saved_name, help="start from this saved profile")
    parser.add_argument(
        "--save-profile", action="store_true", help="save the page's state to --profile"
    )
    parser.add_argument("--viewport", type=viewport, help="window size WIDTHxHEIGHT")
    parser.add_argument(
        "--priority", choices=list(PRIORITIES), help="higher runs first (default: normal)"
    )
    parser.add_argument(
        "--timeout-ms",
        type=zero_or_whole_number_in(MIN_TIMEOUT_MS, MAX_TIMEOUT_MS),
        metavar="MS",
        help=f"time limit of one attempt, {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS} "
        "(0: the farm's default)",
    )
    parser.add_argument(
        "--max-attempts",
        type=whole_number_in(1, MAX_ATTEMPTS),
        metavar="N",
        help=f"attempts before the task fails, 1 to {MAX_ATTEMPTS} (default 3)",
    )
    parser.add_argument(
        "--deadline",
        type=deadline,
        metavar="TIME",
        help="the task must have ended by then: 2026-01-31T18:00:00Z, or +SECONDS from now",
    )
    parser.add_argument("--region", type=region, help="run only on agents of this region")
    parser.add_argument(
        "--idempotency-key",
        type=idempotency_key,
        metavar="KEY",
        help="a second create with the same key returns the first task",
    )
    parser.add_argument(
        "--callback-url", type=url, metavar="URL", help="POST the task here when it ends"
    )
    parser.add_argument(
        "--cache-ttl",
        type=whole_number(MAX_CACHE_TTL_SECONDS),
        metavar="SECONDS",
        help="accept the tenant's stored result of the same spec this old, at most "
        f"{MAX_CACHE_TTL_SECONDS} (0 runs the task; default: the action's)",
    )
    add_label_argument(parser, "a label (repeatable)")
    parser.add_argument(
        "--spec",
        metavar="FILE",
        help="a TaskSpec as JSON (- reads stdin); its fields override the flags",
    )


def spec_from_flags(args: argparse.Namespace) -> tasks_pb2.TaskSpec:
    """The TaskSpec the flags describe; the action is left unset if no flag names one."""
    spec = tasks_pb2.TaskSpec(url=args.url or "")
    set_action(spec, args)
    spec.profile = args.profile or ""
    spec.save_profile = args.save_profile
    if args.viewport is not None:
        spec.viewport.CopyFrom(args.viewport)
    if args.priority:
        spec.priority = PRIORITIES[args.priority]
    if args.timeout_ms is not None:
        spec.timeout_ms = args.timeout_ms
    if args.cache_ttl is not None:
        spec.cache_ttl_seconds = args.cache_ttl
    if args.max_attempts is not None:
        spec.max_attempts = args.max_attempts
    if args.deadline is not None:
        spec.deadline.FromDatetime(args.deadline)
    spec.region = args.region or ""
    spec.idempotency_key = args.idempotency_key or ""
    spec.callback_url = args.callback_url or ""
    spec.labels.update(labels_of(args.labels))
    return spec


def read_spec_file(name: str) -> tasks_pb2.TaskSpec:
    """A TaskSpec from a JSON file (proto3 JSON names), or from stdin for `-`.

    Checked as the SDK checks a spec, so a wrong field is one line naming it and the
    closest field there is (`screenshot.fullpage: ... did you mean 'fullPage'?`).
    """
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    except OSError as error:
        raise CliError(f"--spec {name}: {error.strerror}") from error
    return spec_from_json(text, f"--spec {name}")


def spec_from_json(text: str, where: str) -> tasks_pb2.TaskSpec:
    """The TaskSpec a JSON text holds, checked as the SDK checks one (--spec, submit lines).

    CliError is one line naming `where` and the field that does not fit, with the closest
    field there is (`screenshot.fullpage: ... did you mean 'fullPage'?`).
    """
    # The SDK is imported only here: its package imports its clients, grpc and httpx.
    from browserfarm.errors import InvalidArgument
    from browserfarm.specs import task_spec

    try:
        written = json.loads(text)
    except json.JSONDecodeError as error:
        raise CliError(f"{where}: not JSON: {error}") from error
    if not isinstance(written, dict):
        raise CliError(f"{where}: must be a JSON object (a TaskSpec), got {text.strip()[:40]}")
    try:
        return task_spec(written)
    except InvalidArgument as error:
        raise CliError(f"{where}: {' '.join(error.message.split())}") from error


def _has_action(spec: tasks_pb2.TaskSpec) -> bool:
    return any(spec.HasField(action) for action in ACTIONS)


def task_spec_from_args(args: argparse.Namespace) -> tasks_pb2.TaskSpec:
    """The TaskSpec to send: the flags, overridden field by field by --spec's file.

    An action in the file replaces the flags' action; without any action the task
    takes a screenshot.
    """
    spec = spec_from_flags(args)
    if args.spec:
        from_file = read_spec_file(args.spec)
        if _has_action(from_file):
            for action in ACTIONS:
                spec.ClearField(action)
        spec.MergeFrom(from_file)
    if not _has_action(spec):
        spec.screenshot.SetInParent()
    if not spec.url:
        raise UsageError('a URL is needed: give it as the first argument or as "url" in --spec')
    return spec
