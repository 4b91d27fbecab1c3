"""What the CLI prints: messages as proto3 JSON on stdout, errors as `error: ...` on stderr."""

import json
import sys
from typing import TextIO

import grpc
from google.protobuf.message import Message

from farm_cli.exit_codes import ExitCode, rpc_status
from farm_core.message_json import message_dict

CONNECTION_HINT = "is the farm running? Start it with `make run` (or `farm up`), or set FARM_URL"


class CliError(Exception):
    """A failure the user can act on, shown as `error: <message>` with exit code 1."""

    exit_code = ExitCode.ERROR


class UsageError(CliError):
    """Options that do not go together: exit code 2, as argparse's own refusals."""

    exit_code = ExitCode.USAGE


class NoApiKey(CliError):
    """No API key was given or found: exit code 4, as a refused key."""

    exit_code = ExitCode.AUTH


def message_json(message: Message, *, indent: int | None = 2, every_field: bool = True) -> str:
    """`message` as proto3 JSON (lowerCamelCase names), as the HTTP API prints it.

    Every field is shown, or with `every_field` False only those that are set.
    """
    fields = message_dict(message, every_field=every_field)
    return json.dumps(fields, indent=indent, ensure_ascii=False)


def print_message(
    message: Message, *, one_line: bool = False, out: TextIO | None = None, every_field: bool = True
) -> None:
    """Prints `message` as JSON: indented, or on one line (for streams, one event a line)."""
    text = message_json(message, indent=None if one_line else 2, every_field=every_field)
    print(text, file=out or sys.stdout, flush=True)


def rpc_error_text(error: grpc.RpcError) -> str:
    """`error: <STATUS>: <message>`, with a hint when the farm could not be reached."""
    code, details = rpc_status(error)
    text = f"error: {code.name}: {details}"
    if code is grpc.StatusCode.UNAVAILABLE and _unreachable(details):
        text += f"\nhint: {CONNECTION_HINT}"
    return text


def _unreachable(details: str) -> bool:
    # gRPC's own text when no connection to the farm could be made; a status the farm
    # sent may name a refused connection of its own (storage's to S3), and the farm runs.
    return details.lower().startswith("failed to connect to all addresses")
