"""`farm credential ROLE NAME | revoke TARGET`: sign a farm process's credential, or revoke one."""

import argparse
import os
import sys
from pathlib import Path

from farm.auth.v1 import auth_pb2
from farm_cli.client import call_and_print
from farm_cli.commands.ranges import positive_number
from farm_cli.exit_codes import ExitCode
from farm_core.credential_roles import (
    DEFAULT_CREDENTIAL_DAYS,
    MAX_CREDENTIAL_DAYS,
    CredentialRole,
)

REVOKE = "revoke"


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `credential`."""
    issue = commands.add_parser(
        "credential",
        help="print a credential for an agent or a service, signed with the identity key; "
        "or revoke one",
        description="Signs a credential with the private identity key (FARM_IDENTITY_KEY, "
        "else FARM_HOME/identity-key; run it where that key is, never on an agent host) "
        "and prints it on stdout, its id on stderr. "
        "Role agent: an agent's work only (FARM_AGENT_CREDENTIAL); role mcp: having its "
        "callers' identity tokens renewed, nothing else (FARM_MCP_CREDENTIAL); role console: "
        "no RPC, the web console naming its browsers to the edge's check "
        "(FARM_CONSOLE_CREDENTIAL); role service: scope internal (a service calling another). "
        "`farm credential revoke TARGET` revokes through auth (an operator's admin key, "
        "FARM_API_KEY): TARGET is a credential id (cred_...), a credential itself, or a "
        "subject ROLE:NAME (every credential issued to it until now).",
    )
    issue.add_argument("role", choices=[*(role.value for role in CredentialRole), REVOKE])
    issue.add_argument(
        "name",
        help="who carries it, e.g. an agent's id or 'storage'; for revoke: what to revoke",
    )
    issue.add_argument(
        "--days",
        type=credential_days,
        default=DEFAULT_CREDENTIAL_DAYS,
        help=f"how long the credential is good for (default {DEFAULT_CREDENTIAL_DAYS:g})",
    )
    issue.set_defaults(run=run)


def credential_days(text: str) -> float:
    """An argparse type: `--days` above 0 and at most MAX_CREDENTIAL_DAYS, else a usage error."""
    days = positive_number(text)
    if days > MAX_CREDENTIAL_DAYS:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_CREDENTIAL_DAYS:g} (10 years), got {text!r}"
        )
    return days


def run(args: argparse.Namespace) -> int:
    """Prints the credential (its id on stderr), or revokes one."""
    # Imported here: signing needs jwt and cryptography, the parser none of them.
    from farm_core.identity import IdentitySigner, credential_id
    from farm_core.identity_keys import IDENTITY_KEY_FILE

    if args.role == REVOKE:
        request = revoke_request(args.name)
        if request is None:
            print(
                "this credential has no id (issued before credentials had one): "
                "revoke its subject, ROLE:NAME, instead",
                file=sys.stderr,
            )
            return ExitCode.USAGE
        return call_and_print(lambda farm: farm.auth.RevokeCredential, request)
    key = (
        os.environ.get("FARM_IDENTITY_KEY")
        or (Path(os.environ.get("FARM_HOME", ".farm")) / IDENTITY_KEY_FILE).read_text()
    )
    credential = IdentitySigner(key).credential(CredentialRole(args.role), args.name, args.days)
    print(credential, file=sys.stdout)
    print(f"credential id: {credential_id(credential)}", file=sys.stderr)
    return 0


def revoke_request(target: str) -> auth_pb2.RevokeCredentialRequest | None:
    """RevokeCredential for `target`: a subject (ROLE:NAME), a credential, or its id.

    None for a credential without an id. A credential itself is never sent: only its id,
    read without checking its signature (revoking a forged one's id harms nothing).
    """
    from farm_core.identity import credential_id

    if ":" in target:
        return auth_pb2.RevokeCredentialRequest(subject=target)
    if target.count(".") == 2:
        found = credential_id(target)
        return auth_pb2.RevokeCredentialRequest(id=found) if found else None
    return auth_pb2.RevokeCredentialRequest(id=target)
