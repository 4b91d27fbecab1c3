"""`farm tenant get|limits`: tenants and their quotas, through the AuthService."""

import argparse

from farm.auth.v1 import auth_pb2
from farm_cli.client import CALL_TIMEOUT, connect
from farm_cli.console import print_message


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `tenant` and its verbs."""
    group = commands.add_parser("tenant", help="see tenants and set their quotas")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")

    get = verbs.add_parser("get", help="a tenant and its quotas (as set and in force)")
    get.add_argument("name")
    get.set_defaults(run=get_tenant)

    limits = verbs.add_parser(
        "limits",
        help="set a tenant's quotas; unnamed ones stay, 0 returns one to the farm's default "
        "(operators only)",
    )
    limits.add_argument("name")
    limits.add_argument("--max-queued-tasks", type=int, default=None)
    limits.add_argument("--max-running-tasks", type=int, default=None)
    limits.add_argument("--max-artifact-bytes", type=int, default=None)
    limits.set_defaults(run=set_tenant_limits)


def get_tenant(args: argparse.Namespace) -> int:
    """GetTenant."""
    with connect() as farm:
        request = auth_pb2.GetTenantRequest(name=args.name)
        print_message(farm.auth.GetTenant(request, metadata=farm.metadata, timeout=CALL_TIMEOUT))
    return 0


def set_tenant_limits(args: argparse.Namespace) -> int:
    """UpdateTenantLimits with the quotas given."""
    request = auth_pb2.UpdateTenantLimitsRequest(name=args.name)
    for field in ("max_queued_tasks", "max_running_tasks", "max_artifact_bytes"):
        value = getattr(args, field)
        if value is not None:
            setattr(request, field, value)
    with connect() as farm:
        reply = farm.auth.UpdateTenantLimits(request, metadata=farm.metadata, timeout=CALL_TIMEOUT)
    print_message(reply)
    return 0
