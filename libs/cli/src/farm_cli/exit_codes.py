"""The `farm` command's exit codes, by outcome (docs/cli.md lists them)."""

from enum import IntEnum

import grpc


class ExitCode(IntEnum):
    """What a `farm` command's exit status says about its outcome."""

    # Everything asked for succeeded.
    OK = 0
    # The command failed: a call was refused or failed (not found, invalid argument,
    # the farm unreachable), or its input could not be read.
    ERROR = 1
    # The command line was wrong (argparse's own code).
    USAGE = 2
    # The calls went through, but a task did not succeed (failed or cancelled), or a
    # batch had items that failed or were refused.
    TASKS_FAILED = 3
    # No API key, or the key was refused (UNAUTHENTICATED, PERMISSION_DENIED).
    AUTH = 4
    # `farm status`: the status was read, but processes the local farm's launcher
    # started are not running.
    PARTS_DOWN = 5
    # Stopped with Ctrl-C.
    INTERRUPTED = 130


AUTH_CODES = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


def rpc_status(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """The status code and message of a failed call (UNKNOWN and its text if it has none)."""
    if isinstance(error, grpc.Call):
        return error.code(), error.details() or str(error)
    return grpc.StatusCode.UNKNOWN, str(error)


def item_failure(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """rpc_status of one item's call in a bulk command.

    Re-raises a refused key's error: every other item would meet it too.
    """
    code, details = rpc_status(error)
    if code in AUTH_CODES:
        raise error
    return code, details


def exit_code_of(error: grpc.RpcError) -> ExitCode:
    """The exit code of a command ended by `error`."""
    code, _ = rpc_status(error)
    return ExitCode.AUTH if code in AUTH_CODES else ExitCode.ERROR
