"""The `farm` command: `farm up` runs the local farm; the other groups call its API."""

import argparse
import difflib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import version
from typing import NoReturn

from farm_cli.commands import (
    agent,
    artifact,
    audit,
    credential,
    db,
    deadletter,
    down,
    envoy_config,
    key,
    mcp,
    nats_config,
    saved,
    session,
    status,
    task,
    tenant,
    up,
    webhook,
    whoami,
)
from farm_cli.console import CliError
from farm_cli.exit_codes import ExitCode

# Commands whose output is no API reply: the farm's own log, MCP over stdio, configs.
WITHOUT_JSON = frozenset({"up", "down", "mcp", "envoy-config", "nats-config", "credential"})

COMMAND_GROUPS = (
    up,
    down,
    status,
    task,
    session,
    mcp,
    artifact,
    saved,
    key,
    tenant,
    whoami,
    agent,
    deadletter,
    audit,
    webhook,
    credential,
    db,
    envoy_config,
    nats_config,
)


class FarmParser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are JSON when the command line has --json.

    Its subcommands' parsers are FarmParsers too (argparse makes them of its class).
    """

    # Set by main for the command line it parses: argparse refuses it before --json is read.
    json_errors = False

    def error(self, message: str) -> NoReturn:
        """Exits 2 naming what is wrong: the usage and `prog: error: ...`, or one JSON object."""
        if FarmParser.json_errors:
            _print_error(True, ExitCode.USAGE.name, message, "")
            sys.exit(ExitCode.USAGE)
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser: argparse.ArgumentParser = FarmParser(
        prog="farm",
        description="browserfarm: headless Chromium as a service. The API commands reach "
        "FARM_URL (https://host:port for TLS, trusting the CA in FARM_CA_FILE if set) with "
        "the key in FARM_API_KEY; without them, the local farm under FARM_HOME (default "
        ".farm; on whatever ports `farm up` gave it) with its admin key. Output is JSON; the "
        "commands that show tables or progress (status, task trace, task run --from, task "
        "cancel of many tasks, task watch on a terminal, task run's spinner) print JSON with "
        "--json. Exit codes: 0 success, 1 error (or task run's wait ran out), "
        "2 usage, 3 a task did not succeed (or, cancelling many, was not cancelled), 4 no key "
        "or key refused, 5 (status) parts of the local farm are not running.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"farm {version('farm-cli')} (SDK browserfarm {version('browserfarm')})",
        help="print the farm command's version and the Python SDK's, then exit",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_parser(commands)
    for name, command in commands.choices.items():
        if name not in WITHOUT_JSON:
            add_json_flag(command)
    for command in leaf_parsers(parser):
        command.set_defaults(command_parser=command)
    return parser


def leaf_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parsers of `parser`'s commands that take no further verb (e.g. `farm task run`)."""
    verbs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not verbs:
        yield parser
    for verb in verbs:
        for command in dict.fromkeys(verb.choices.values()):
            yield from leaf_parsers(command)


def refuse_unknown(parser: argparse.ArgumentParser, unknown: Sequence[str]) -> None:
    """Exits 2 with the command's own usage, naming the unknown arguments and a near option."""
    message = f"unrecognized arguments: {' '.join(unknown)}"
    options = list(parser._option_string_actions)
    for argument in unknown:
        if argument.startswith("-"):
            near = difflib.get_close_matches(argument.split("=", 1)[0], options, n=1, cutoff=0.75)
            if near:
                message += f" (did you mean {near[0]}?)"
                break
    parser.error(message)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Gives `parser`'s commands (itself, or each of its verbs) a --json flag if they lack one."""
    verbs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not verbs:
        if "--json" not in parser._option_string_actions:
            parser.add_argument(
                "--json", action="store_true", help="print JSON (this command's only output)"
            )
        return
    for verb in verbs:
        for command in dict.fromkeys(verb.choices.values()):
            add_json_flag(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns its exit code (ExitCode), errors printed on stderr.

    An error is one line, `error: ...`, or with --json one JSON object
    `{"error": {"code", "message"}}`.
    """
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader went away (`farm task list | head`): no traceback, and no second
        # error when Python flushes stdout on exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.ERROR


def _run(argv: Sequence[str] | None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    # Only before `--`: after it, `--json` would be a value, not the option.
    FarmParser.json_errors = "--json" in words[: words.index("--") if "--" in words else None]
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        refuse_unknown(getattr(args, "command_parser", parser), unknown)
    as_json = bool(getattr(args, "json", False))
    try:
        return int(args.run(args))
    except CliError as error:
        # A code of its own is named, as an RPC error's is: `error: DEADLINE_EXCEEDED: ...`.
        named = "" if error.code_name == error.exit_code.name else f"{error.code_name}: "
        _print_error(as_json, error.code_name, str(error), f"error: {named}{error}")
        return error.exit_code
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    except Exception as error:
        if not _is_rpc_error(error):
            raise
        from farm_cli.rpc_errors import exit_code_of, rpc_error_text, rpc_status

        code, details = rpc_status(error)
        _print_error(as_json, code.name, details, rpc_error_text(error))
        return exit_code_of(error)


def _is_rpc_error(error: Exception) -> bool:
    # Only the commands that call the farm import grpc: a command that did not
    # cannot have raised its error, and need not pay for importing it now.
    grpc = sys.modules.get("grpc")
    return grpc is not None and isinstance(error, grpc.RpcError)


def _print_error(as_json: bool, code: str, message: str, text: str) -> None:
    if as_json:
        text = json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False)
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
