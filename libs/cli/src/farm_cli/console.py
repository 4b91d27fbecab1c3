"""What the CLI prints: messages as proto3 JSON on stdout, errors as `error: ...` on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from farm_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from google.protobuf.message import Message


class CliError(Exception):
    """A failure the user can act on, shown as `error: <message>` with exit code 1."""

    exit_code = ExitCode.ERROR

    @property
    def code_name(self) -> str:
        """The error's code in `--json`'s `{"error": {"code", ...}}`."""
        return self.exit_code.name


class UsageError(CliError):
    """Options that do not go together: exit code 2, as argparse's own refusals."""

    exit_code = ExitCode.USAGE


class NoApiKey(CliError):
    """No API key was given or found: exit code 4, as a refused key."""

    exit_code = ExitCode.AUTH


def message_json(
    message: Message,
    *,
    indent: int | None = 2,
    every_field: bool = True,
    keep: str = "",
) -> str:
    """`message` as proto3 JSON (lowerCamelCase names), as the HTTP API prints it.

    Every field is shown, or with `every_field` False only those that are set and the
    repeated field `keep` (empty too).
    """
    # Imported here: protobuf's JSON printer is no part of building the parser.
    from farm_core.message_json import message_dict

    fields = message_dict(message, every_field=every_field)
    if keep:
        fields.setdefault(message.DESCRIPTOR.fields_by_name[keep].json_name, [])
    return json.dumps(fields, indent=indent, ensure_ascii=False)


def print_message(
    message: Message,
    *,
    one_line: bool = False,
    out: TextIO | None = None,
    every_field: bool = True,
    keep: str = "",
) -> None:
    """Prints `message` as JSON: indented, or on one line (for streams, one event a line).

    `every_field` and `keep` as message_json's.
    """
    indent = None if one_line else 2
    text = message_json(message, indent=indent, every_field=every_field, keep=keep)
    print(text, file=out or sys.stdout, flush=True)


@contextmanager
def waiting(what: str, *, quiet: bool) -> Iterator[None]:
    """A spinner on stderr, `what` and the seconds so far, while the block runs.

    Shown only on a terminal, never when `quiet` (--json), and gone when the block ends.
    """
    if quiet or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn(what), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        progress.add_task(what, total=None)
        yield
