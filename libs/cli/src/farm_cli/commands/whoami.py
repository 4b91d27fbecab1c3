"""`farm whoami`: the caller's tenant, key and scopes."""

import argparse

from farm.auth.v1 import auth_pb2
from farm_cli.client import call_and_print


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `whoami`."""
    whoami = commands.add_parser("whoami", help="show the caller's tenant, key and scopes")
    whoami.set_defaults(run=who_am_i)


def who_am_i(args: argparse.Namespace) -> int:
    """WhoAmI."""
    return call_and_print(lambda farm: farm.auth.WhoAmI, auth_pb2.WhoAmIRequest())
