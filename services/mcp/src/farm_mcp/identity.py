"""Who calls /mcp: the signed identity Envoy's ext_authz put in x-farm-identity, verified here.

Envoy checks the API key and replaces it with the identity token; this service
trusts only a token signed with the farm's identity key (it holds the public
half), and admits a request only if its key holds the scope `sessions`; it
refuses others with a JSON-RPC error, which MCP clients show (as the edge does,
farm_core.mcp_refusals). The MCP SDK binds each MCP session to the key that
opened it (a request with another key's identity is 404).
"""

import grpc
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from farm_core.errors import HTTP_STATUS_OF_CODE, Unauthenticated
from farm_core.identity import IDENTITY_HEADER, Identity, IdentityVerifier
from farm_core.mcp_refusals import mcp_refusal_body
from farm_core.scopes import Scope as FarmScope

REQUIRED_SCOPES = [FarmScope.SESSIONS.value]
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


class RequireSessionsScope:
    """/mcp for an admitted caller whose key has REQUIRED_SCOPES; a JSON-RPC error otherwise.

    401 without a verified identity, 403 without a scope, each with the RFC 6750
    challenge (error="invalid_token" or "insufficient_scope") for OAuth-minded clients.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = scope.get("user")
        if not isinstance(user, FarmUser):
            refusal = _refusal(
                grpc.StatusCode.UNAUTHENTICATED,
                "invalid_token",
                "no verified identity came with the request: send authorization: Bearer <key>",
            )
            await refusal(scope, receive, send)
            return
        missing = [name for name in REQUIRED_SCOPES if not user.farm_identity.has_scope(name)]
        if missing:
            refusal = _refusal(
                grpc.StatusCode.PERMISSION_DENIED,
                "insufficient_scope",
                f"API key {user.farm_identity.key_id} lacks the scope {missing[0]!r} "
                "that MCP needs (a connection drives a farm session)",
            )
            await refusal(scope, receive, send)
            return
        await self._app(scope, receive, send)


def _refusal(status: grpc.StatusCode, challenge: str, message: str) -> Response:
    return Response(
        mcp_refusal_body(status, message),
        status_code=HTTP_STATUS_OF_CODE[status],
        media_type="application/json",
        headers={"www-authenticate": f'Bearer error="{challenge}"'},
    )
