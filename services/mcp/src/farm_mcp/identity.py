"""Who calls /mcp: the signed identity Envoy's ext_authz put in x-farm-identity, verified here.

Envoy checks the API key and replaces it with the identity token; this service
trusts only a token signed with the farm's identity key (it holds the public
half), and admits a request only if its key holds the scope `sessions`. The MCP
SDK binds each MCP session to the key that opened it (a request with another
key's identity is 404).
"""

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection

from farm_core.errors import Unauthenticated
from farm_core.identity import IDENTITY_HEADER, Identity, IdentityVerifier
from farm_core.scopes import Scope

REQUIRED_SCOPES = [Scope.SESSIONS.value]
"""What a key needs for /mcp: a connection drives a farm session."""


class FarmUser(AuthenticatedUser):
    """An admitted caller: the MCP SDK's user, with the farm identity it stands for."""

    def __init__(self, identity: Identity, token: str) -> None:
        super().__init__(
            AccessToken(
                token=token,
                client_id=identity.key_id,
                scopes=sorted(identity.scopes),
                subject=identity.tenant,
            )
        )
        self.farm_identity = identity
        # The x-farm-identity token the request brought, as Envoy's ext_authz put it.
        self.token = token


class FarmIdentityBackend(AuthenticationBackend):
    """Starlette authentication from the x-farm-identity header; no header or a bad one: none."""

    def __init__(self, codec: IdentityVerifier) -> None:
        self._codec = codec

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        token = conn.headers.get(IDENTITY_HEADER)
        if not token:
            return None
        try:
            identity = self._codec.decode(token)
        except Unauthenticated:
            return None
        return AuthCredentials(sorted(identity.scopes)), FarmUser(identity, token)
