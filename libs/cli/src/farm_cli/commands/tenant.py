"""`farm tenant get|limits`: tenants and their quotas, through the AuthService."""

import argparse

from farm.auth.v1 import auth_pb2
from farm_cli.client import call_and_print
from farm_cli.commands.ranges import INT64_MAX, whole_number
from farm_cli.console import UsageError


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
    for quota in (
        "--max-queued-tasks",
        "--max-running-tasks",
        "--max-artifact-bytes",
        "--max-open-sessions",
    ):
        limits.add_argument(
            quota, type=whole_number(INT64_MAX), default=None, help="0: the farm's default"
        )
    limits.set_defaults(run=set_tenant_limits)


def get_tenant(args: argparse.Namespace) -> int:
    """GetTenant."""
    request = auth_pb2.GetTenantRequest(name=args.name)
    return call_and_print(lambda farm: farm.auth.GetTenant, request)


def set_tenant_limits(args: argparse.Namespace) -> int:
    """UpdateTenantLimits with the quotas given."""
    request = auth_pb2.UpdateTenantLimitsRequest(name=args.name)
    fields = ("max_queued_tasks", "max_running_tasks", "max_artifact_bytes", "max_open_sessions")
    given = {field: getattr(args, field) for field in fields if getattr(args, field) is not None}
    if not given:
        # Without one the call would only create the tenant: a typo in NAME would go unseen.
        raise UsageError(
            "tenant limits: give at least one of --max-queued-tasks, --max-running-tasks, "
            "--max-artifact-bytes, --max-open-sessions (see `farm tenant get NAME` for the "
            "current ones)"
        )
    for field, value in given.items():
        setattr(request, field, value)
    return call_and_print(lambda farm: farm.auth.UpdateTenantLimits, request)
