"""The roles a farm process's credential is issued in, and how long one is good for.

Apart from identity.py (which signs and checks credentials with jwt) so that naming a
role costs no cryptography: `farm credential`'s parser lists them.
"""

from enum import StrEnum

DEFAULT_CREDENTIAL_DAYS = 365.0
# Ten years, as an API key's longest lifetime. A credential's id carries its expiry in
# at most 12 digits (farm_core.revocations); one far past that could not be revoked by id.
MAX_CREDENTIAL_DAYS = 3650.0


class CredentialRole(StrEnum):
    """What a farm process's credential lets it do."""

    # Take tasks, send events, upload artifacts of its tasks: scope `agent` only.
    AGENT = "agent"
    # A service calling another (storage reading a tenant's quota): scope `internal`.
    SERVICE = "service"
    # The MCP service: renew the identity tokens its callers showed it, scope `mcp` only.
    MCP = "mcp"
    # The web console: names to auth's check the browser a key came from (its refused
    # keys count there, not the console's); scope `console`, which no RPC takes.
    CONSOLE = "console"
