"""The callers' identity tokens, renewed by auth before a farm call carries an expiring one.

A tool call may outlast the token its request brought, and a browser is closed
long after the caller's last request (DELETE /mcp, the idle sweep, the service
stopping). This service holds no key that signs identities: it shows auth the
token the caller brought and gets a fresh one for the same identity
(IdentityRenewalService, with the service's own credential of role `mcp`). Auth
refuses once the caller's key is revoked or expired, or the caller has not shown
it at the edge for FARM_AUTH_RENEWAL_MAX_AGE_SECONDS.
"""

import time
from collections import OrderedDict
from dataclasses import dataclass

import grpc

from farm.auth.v1 import renewal_pb2, renewal_pb2_grpc
from farm_core.identity import IDENTITY_HEADER, REMEMBERED_TOKENS, token_expiry
from farm_mcp_tools.farm import Credentials, FarmCallFailed


@dataclass(frozen=True)
class _Current:
    """The token to carry for a token a caller showed, and its expiry (a Unix time)."""

    token: str
    expires: float


class IdentityRenewer:
    """Puts a caller's identity in a farm call's metadata, renewed by auth when near its end.

    Renewed tokens are remembered by the token the caller showed, the most recent
    few thousand, so a busy connection asks auth about once a token lifetime.
    """

    def __init__(
        self,
        renewal: renewal_pb2_grpc.IdentityRenewalServiceStub,
        credential: str | None,
        renew_before_seconds: float,
    ) -> None:
        self._renewal = renewal
        self._credential = credential
        self._renew_before_seconds = renew_before_seconds
        self._current: OrderedDict[str, _Current] = OrderedDict()

    async def refresh(self, credentials: Credentials, time_limit: float) -> Credentials:
        """`credentials` with its identity token renewed if it is about to expire."""
        return [
            (name, await self.token(value, time_limit) if name == IDENTITY_HEADER else value)
            for name, value in credentials
        ]

    async def token(self, shown: str, time_limit: float) -> str:
        """The token to carry now for the token `shown` by a caller; FarmCallFailed if refused."""
        current = self._current.get(shown) or _Current(shown, token_expiry(shown))
        if current.expires - time.time() > self._renew_before_seconds or not self._credential:
            return current.token
        try:
            reply = await self._renewal.RenewIdentity(
                renewal_pb2.RenewIdentityRequest(token=shown),
                metadata=((IDENTITY_HEADER, self._credential),),
                timeout=max(time_limit, 0.001),
            )
        except grpc.aio.AioRpcError as error:
            raise FarmCallFailed(
                error.code(), f"the caller's identity could not be renewed: {error.details()}"
            ) from error
        renewed = _Current(reply.token, float(reply.expire_time.seconds))
        self._current.pop(shown, None)
        self._current[shown] = renewed
        while len(self._current) > REMEMBERED_TOKENS:
            self._current.popitem(last=False)
        return renewed.token
