"""`farm deadletter list|requeue`: tasks that failed for good, through the AdminService."""

import argparse

from farm.admin.v1 import admin_pb2
from farm_cli.client import call_and_print, list_and_print
from farm_cli.commands.ranges import add_page_arguments


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `deadletter` and its verbs."""
    group = commands.add_parser(
        "deadletter", help="list and requeue failed tasks (needs the admin scope)"
    )
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")

    listing = verbs.add_parser("list", help="list the tenant's failed tasks, newest first")
    add_page_arguments(listing, every_page=False)
    listing.add_argument("--all", action="store_true", help="follow every page")
    listing.add_argument(
        "--json", action="store_true", help="print every field (by default only those set)"
    )
    listing.set_defaults(run=list_dead_letters)

    requeue = verbs.add_parser(
        "requeue", help="queue a failed task again with a fresh set of attempts"
    )
    requeue.add_argument("task_id", metavar="TASK_ID")
    requeue.set_defaults(run=requeue_dead_letter)


def list_dead_letters(args: argparse.Namespace) -> int:
    """ListDeadLetters: one page, or with --all every page in one list.

    A dead letter's steps carry many empty fields, so only set ones are printed
    unless --json asks for the reply as the HTTP API gives it.
    """
    request = admin_pb2.ListDeadLettersRequest(page_size=args.page_size, page_token=args.page_token)
    return list_and_print(
        lambda farm: farm.admin.ListDeadLetters,
        request,
        "dead_letters",
        every=args.all,
        every_field=args.json,
    )


def requeue_dead_letter(args: argparse.Namespace) -> int:
    """RequeueDeadLetter; prints the task, queued again."""
    request = admin_pb2.RequeueDeadLetterRequest(task_id=args.task_id)
    return call_and_print(lambda farm: farm.admin.RequeueDeadLetter, request)
