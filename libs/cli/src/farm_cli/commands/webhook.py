"""`farm webhook secret [--rotate]`: the tenant's secret that signs its callbacks."""

import argparse

from farm.tasks.v1 import tasks_pb2
from farm_cli.client import call_and_print


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `webhook` and its verb."""
    group = commands.add_parser("webhook", help="the webhook secret that signs task callbacks")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")
    secret = verbs.add_parser("secret", help="print the tenant's webhook secret (docs/webhooks.md)")
    secret.add_argument(
        "--rotate",
        action="store_true",
        help="replace it with a new one; callbacks are signed with both for a while",
    )
    secret.set_defaults(run=webhook_secret)


def webhook_secret(args: argparse.Namespace) -> int:
    """GetWebhookSecret, or RotateWebhookSecret with --rotate; prints the WebhookSecret."""
    if args.rotate:
        return call_and_print(
            lambda farm: farm.tasks.RotateWebhookSecret, tasks_pb2.RotateWebhookSecretRequest()
        )
    return call_and_print(
        lambda farm: farm.tasks.GetWebhookSecret, tasks_pb2.GetWebhookSecretRequest()
    )
