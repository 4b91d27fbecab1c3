"""`farm audit`: the audit log (changes and refused calls), through the AuditService."""

import argparse
import datetime as dt
import re

from farm.audit.v1 import audit_pb2
from farm_cli.client import list_and_print
from farm_cli.commands.ranges import MAX_PAGE_SIZE
from farm_cli.console import UsageError
from farm_core.audit_outcomes import audit_outcome, unknown_outcome_message

DEFAULT_LIMIT = 50
_AGO = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `audit`."""
    group = commands.add_parser(
        "audit", help="list audit records, newest first (needs the admin scope)"
    )
    group.add_argument(
        "--tenant",
        default="",
        help="only calls made with this tenant's keys (an operator's change to a tenant "
        "is listed under the operator's tenant, with the tenant as its target)",
    )
    group.add_argument(
        "--rpc", default="", help='only this method, e.g. "CreateTask" or its full name'
    )
    group.add_argument(
        "--outcome",
        default="",
        help='only this outcome: "OK" or a gRPC status code name in any case, e.g. '
        '"PERMISSION_DENIED" or "permission_denied"',
    )
    group.add_argument(
        "--since",
        default="",
        help='only records from then on: an RFC 3339 time or an age such as "30m", "2h", "7d"',
    )
    group.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help="print at most this many records"
    )
    group.add_argument(
        "--page-token",
        default="",
        help="continue from the nextPageToken an earlier listing printed",
    )
    group.set_defaults(run=list_audit_records)


def since_time(text: str, now: dt.datetime) -> dt.datetime | None:
    """The moment `--since` names: an RFC 3339 time, or an age before `now`; None if empty."""
    if not text:
        return None
    ago = _AGO.match(text.strip())
    if ago:
        return now - dt.timedelta(seconds=int(ago.group(1)) * _UNIT_SECONDS[ago.group(2)])
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise UsageError(f'--since: not a time or an age like "2h": {text!r}') from error
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def list_audit_records(args: argparse.Namespace) -> int:
    """ListAuditRecords, following pages until --limit records are in hand."""
    if args.limit < 1:
        raise UsageError("--limit: must be at least 1")
    outcome = audit_outcome(args.outcome)
    if outcome is None:
        raise UsageError(f"--outcome: {unknown_outcome_message(args.outcome)}")
    request = audit_pb2.ListAuditRecordsRequest(
        tenant=args.tenant, rpc=args.rpc, outcome=outcome, page_token=args.page_token
    )
    since = since_time(args.since, dt.datetime.now(dt.UTC))
    if since is not None:
        request.since.FromDatetime(since)
    return list_and_print(
        lambda farm: farm.audit.ListAuditRecords,
        request,
        "audit_records",
        limit=args.limit,
        page_size=MAX_PAGE_SIZE,
    )
