"""The `farm` command: `farm up` runs the local farm; the other groups call its API."""

import argparse
import sys
from collections.abc import Sequence

import grpc

from farm_cli.commands import (
    agent,
    artifact,
    audit,
    deadletter,
    envoy_config,
    key,
    mcp,
    saved,
    session,
    status,
    task,
    tenant,
    up,
    whoami,
)
from farm_cli.console import CliError, rpc_error_text

COMMAND_GROUPS = (
    up,
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
    envoy_config,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(
        prog="farm",
        description="browserfarm: headless Chromium as a service. The API commands reach "
        "FARM_URL (default 127.0.0.1:8080; https://host:port for TLS, trusting the CA in "
        "FARM_CA_FILE if set) with the key in FARM_API_KEY "
        "(default: the local farm's admin key). Output is JSON (`farm status`: tables, or "
        "JSON with --json).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns its exit code (1 on errors, printed as `error: ...`)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
    except grpc.RpcError as error:
        print(rpc_error_text(error), file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
