"""`farm credential`: sign a credential for an agent or a service with the identity key."""

import argparse
import os
import sys
from pathlib import Path

from farm_core.identity import DEFAULT_CREDENTIAL_DAYS, CredentialRole, IdentitySigner
from farm_core.identity_keys import IDENTITY_KEY_FILE


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `credential`."""
    issue = commands.add_parser(
        "credential",
        help="print a credential for an agent or a service, signed with the identity key",
        description="Signs a credential with the private identity key (FARM_IDENTITY_KEY, "
        "else FARM_HOME/identity-key; run it where that key is, never on an agent host). "
        "Role agent: an agent's work only (FARM_AGENT_CREDENTIAL); role mcp: having its "
        "callers' identity tokens renewed, nothing else (FARM_MCP_CREDENTIAL); role service: "
        "scope internal (a service calling another).",
    )
    issue.add_argument("role", choices=[role.value for role in CredentialRole])
    issue.add_argument("name", help="who carries it, e.g. an agent's id or 'storage'")
    issue.add_argument("--days", type=float, default=DEFAULT_CREDENTIAL_DAYS)
    issue.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints the credential."""
    key = (
        os.environ.get("FARM_IDENTITY_KEY")
        or (Path(os.environ.get("FARM_HOME", ".farm")) / IDENTITY_KEY_FILE).read_text()
    )
    signer = IdentitySigner(key)
    print(signer.credential(CredentialRole(args.role), args.name, args.days), file=sys.stdout)
    return 0
