"""Running `farm task create` and `farm …` in this process, for the option tests."""

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_cli.commands.task_spec import task_spec_from_args
from farm_cli.main import build_parser, main

URL = "http://127.0.0.1/"


def spec_for(*argv: str) -> tasks_pb2.TaskSpec:
    """The spec `farm task create URL ARGV` would send."""
    args = build_parser().parse_args(["task", "create", URL, *argv])
    return task_spec_from_args(args)


def refusal(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The exit code and last line of stderr of `farm ARGV`: argparse's or the command's."""
    try:
        code = main(argv)
    except SystemExit as exited:
        code = int(exited.code or 0)
    return code, capsys.readouterr().err.splitlines()[-1]
