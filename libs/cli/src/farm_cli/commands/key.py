"""`farm key create|list|revoke`: API keys, through the AuthService."""

import argparse
import sys

from farm.auth.v1 import auth_pb2
from farm_cli.client import CALL_TIMEOUT, connect
from farm_cli.console import print_message


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `key` and its verbs."""
    group = commands.add_parser("key", help="manage API keys (needs the admin scope)")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")

    create = verbs.add_parser("create", help="create an API key; its secret is shown once")
    create.add_argument("name")
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
    create.add_argument("--ttl-seconds", type=int, default=0, help="default: never expires")
    create.set_defaults(run=create_key)

    verbs.add_parser("list", help="list API keys").set_defaults(run=list_keys)

    revoke = verbs.add_parser("revoke", help="revoke an API key at once")
    revoke.add_argument("id")
    revoke.set_defaults(run=revoke_key)


def create_key(args: argparse.Namespace) -> int:
    """CreateApiKey; the response (with the secret) on stdout, a warning on stderr."""
    request = auth_pb2.CreateApiKeyRequest(
        name=args.name, scopes=args.scopes, tenant=args.tenant, ttl_seconds=args.ttl_seconds
    )
    with connect() as farm:
        created = farm.auth.CreateApiKey(request, metadata=farm.metadata, timeout=CALL_TIMEOUT)
    print_message(created)
    rule = "=" * 72
    print(
        f"{rule}\n"
        f"  API key {created.api_key.id} ({created.api_key.name}): its secret is\n\n"
        f"    {created.secret}\n\n"
        f"  Store it now: it is NEVER shown again.\n"
        f"{rule}",
        file=sys.stderr,
    )
    return 0


def list_keys(args: argparse.Namespace) -> int:
    """ListApiKeys."""
    with connect() as farm:
        request = auth_pb2.ListApiKeysRequest()
        print_message(farm.auth.ListApiKeys(request, metadata=farm.metadata, timeout=CALL_TIMEOUT))
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    """RevokeApiKey."""
    with connect() as farm:
        request = auth_pb2.RevokeApiKeyRequest(id=args.id)
        print_message(farm.auth.RevokeApiKey(request, metadata=farm.metadata, timeout=CALL_TIMEOUT))
    return 0
