"""The `farm` command's exit codes, by outcome (docs/cli.md lists them)."""

from enum import IntEnum


class ExitCode(IntEnum):
    """What a `farm` command's exit status says about its outcome."""

    # Everything asked for succeeded.
    OK = 0
    # The command failed: a call was refused or failed (not found, invalid argument,
    # the farm unreachable), or its input could not be read; or RunTask stopped waiting
    # before its task ended.
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
