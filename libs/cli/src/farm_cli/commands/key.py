"""`farm key create|list|revoke|rotate|rate`: API keys, through the AuthService."""

import argparse
import sys

from farm.auth.v1 import auth_pb2
from farm_cli.client import call_and_print, call_farm
from farm_cli.commands.ranges import whole_number
from farm_cli.console import UsageError, print_message
from farm_core.key_limits import MAX_GRACE_SECONDS, MAX_RATE, MAX_TTL_SECONDS


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `key` and its verbs."""
    group = commands.add_parser("key", help="manage API keys (needs the admin scope)")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")

    create = verbs.add_parser(
        "create",
        help="create an API key; its secret is shown once",
        # argparse's own would put NAME last, after --scope, which takes it as a scope.
        usage="%(prog)s [-h] NAME --scope SCOPE [SCOPE ...] [--tenant TENANT] "
        "[--ttl-seconds TTL_SECONDS] [--json]",
    )
    # Optional to argparse only so that a name after --scope, which takes every word
    # after it, is answered with where to put it, not just "required: name".
    create.add_argument("name", nargs="?", help="the key's name (before --scope)")
    create.add_argument(
        "--scope",
        dest="scopes",
        action="extend",
        nargs="+",
        required=True,
        metavar="SCOPE",
        help="tasks.write tasks.read script sessions artifacts.read admin",
    )
    create.add_argument("--tenant", default="", help="default: the caller's tenant")
    create.add_argument(
        "--ttl-seconds",
        type=whole_number(MAX_TTL_SECONDS),
        default=0,
        help="seconds until it expires (at most 10 years; default: never expires)",
    )
    create.set_defaults(run=create_key)

    verbs.add_parser("list", help="list API keys").set_defaults(run=list_keys)

    revoke = verbs.add_parser("revoke", help="revoke an API key at once")
    revoke.add_argument("id")
    revoke.set_defaults(run=revoke_key)

    rotate = verbs.add_parser(
        "rotate", help="give an API key a new secret, shown once; the old one works for a while"
    )
    rotate.add_argument("id")
    rotate.add_argument(
        "--grace-seconds",
        type=whole_number(MAX_GRACE_SECONDS),
        default=None,
        help="how long the old secret keeps working (default: the farm's, 1 day)",
    )
    rotate.set_defaults(run=rotate_key)

    rate = verbs.add_parser(
        "rate", help="set an API key's rate limit (0: the farm's default; operators only)"
    )
    rate.add_argument("id")
    rate.add_argument(
        "--per-second", type=whole_number(MAX_RATE), default=None, help="requests a second"
    )
    rate.add_argument("--burst", type=whole_number(MAX_RATE), default=None, help="requests at once")
    rate.set_defaults(run=set_key_rate)


def create_key(args: argparse.Namespace) -> int:
    """CreateApiKey; the response (with the secret) printed by show_secret."""
    if args.name is None:
        raise UsageError(
            "a name is needed, before --scope: farm key create NAME --scope SCOPE ... "
            "(--scope takes every word after it)"
        )
    request = auth_pb2.CreateApiKeyRequest(
        name=args.name, scopes=args.scopes, tenant=args.tenant, ttl_seconds=args.ttl_seconds
    )
    show_secret(call_farm(lambda farm: farm.auth.CreateApiKey, request), args.json)
    return 0


def show_secret(created: auth_pb2.CreateApiKeyResponse, as_json: bool) -> None:
    """The response (with the secret) on stdout, and a warning to store it on stderr.

    With --json the response is the only output, as every command's --json promises: a
    script reading stdout keeps the secret, and stderr stays for an error alone.
    """
    print_message(created)
    if as_json:
        return
    rule = "=" * 72
    print(
        f"{rule}\n"
        f"  API key {created.api_key.id} ({created.api_key.name}): its secret is\n\n"
        f"    {created.secret}\n\n"
        f"  Store it now: it is NEVER shown again.\n"
        f"{rule}",
        file=sys.stderr,
    )


def list_keys(args: argparse.Namespace) -> int:
    """ListApiKeys."""
    return call_and_print(lambda farm: farm.auth.ListApiKeys, auth_pb2.ListApiKeysRequest())


def revoke_key(args: argparse.Namespace) -> int:
    """RevokeApiKey."""
    request = auth_pb2.RevokeApiKeyRequest(id=args.id)
    return call_and_print(lambda farm: farm.auth.RevokeApiKey, request)


def rotate_key(args: argparse.Namespace) -> int:
    """RotateApiKey; the new secret is shown as CreateApiKey's is."""
    request = auth_pb2.RotateApiKeyRequest(id=args.id)
    if args.grace_seconds is not None:
        request.grace_seconds = args.grace_seconds
    show_secret(call_farm(lambda farm: farm.auth.RotateApiKey, request), args.json)
    return 0


def set_key_rate(args: argparse.Namespace) -> int:
    """UpdateApiKey with the rate limit fields given."""
    request = auth_pb2.UpdateApiKeyRequest(id=args.id)
    if args.per_second is not None:
        request.rate_limit_per_second = args.per_second
    if args.burst is not None:
        request.rate_limit_burst = args.burst
    return call_and_print(lambda farm: farm.auth.UpdateApiKey, request)
