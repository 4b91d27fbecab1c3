"""RenewIdentity: a fresh identity token for one the MCP service was shown, if its key still holds.

The MCP service acts for its callers after their requests (a long tool call, closing
a browser when the connection ends or idles) but holds no key that signs
identities. It shows auth a token auth signed for a caller; auth checks the
signature (an expired token is fine), that the key was shown at the edge recently
enough, and that the key it names is still valid with the same tenant and
scopes, then signs a new one. So the MCP service can only keep alive, for a
bounded time, the identities its callers showed it, and a revoked key's end at once.
"""

import datetime as dt
import time

import grpc

from farm.auth.v1 import renewal_pb2, renewal_pb2_grpc
from farm_auth.keys import refusal
from farm_auth.limits import LimitDefaults
from farm_auth.store import KeyStore
from farm_core.db import utcnow
from farm_core.errors import Unauthenticated
from farm_core.identity import IdentitySigner
from farm_core.timestamps import to_timestamp

# A token whose key was shown "in the future" by more than this is refused: clocks
# of auth replicas differ by a little, never by more.
CLOCK_SKEW_SECONDS = 30.0


class RenewalApi(renewal_pb2_grpc.IdentityRenewalServiceServicer):
    """IdentityRenewalService: renews the identity tokens the MCP service was shown."""

    def __init__(
        self,
        store: KeyStore,
        signer: IdentitySigner,
        bootstrap_tenant: str,
        defaults: LimitDefaults,
        max_age_seconds: float,
    ) -> None:
        self._store = store
        self._signer = signer
        self._bootstrap_tenant = bootstrap_tenant
        self._defaults = defaults
        self._max_age_seconds = max_age_seconds

    async def RenewIdentity(
        self, request: renewal_pb2.RenewIdentityRequest, context: grpc.aio.ServicerContext
    ) -> renewal_pb2.RenewIdentityResponse:
        """A fresh token for the identity in request.token; Unauthenticated saying why not."""
        shown = self._signer.decode_for_renewal(request.token)
        age = time.time() - shown.shown_at
        if age > self._max_age_seconds:
            raise Unauthenticated(
                f"identity token refused: its key was last shown {age:.0f} s ago, more than "
                f"the {self._max_age_seconds:g} s a token may be renewed for"
            )
        if age < -CLOCK_SKEW_SECONDS:
            raise Unauthenticated("identity token refused: it was issued in the future")
        record = await self._store.find_by_id(shown.identity.key_id)
        if record is None:
            raise Unauthenticated("identity token refused: its API key no longer exists")
        refused = refusal(record, utcnow())
        if refused is not None:
            raise Unauthenticated(f"identity token refused: {refused.message}")
        identity = record.identity(
            self._bootstrap_tenant, self._defaults.quotas(record.tenant_quotas)
        )
        if (identity.tenant, identity.scopes) != (shown.identity.tenant, shown.identity.scopes):
            raise Unauthenticated(
                "identity token refused: its API key's tenant or scopes have changed"
            )
        token, expires = self._signer.renew(identity, shown.shown_at)
        return renewal_pb2.RenewIdentityResponse(
            token=token, expire_time=to_timestamp(dt.datetime.fromtimestamp(expires, dt.UTC))
        )
