"""Fakes for the tests of the edge's session check: routes in a dict, keys revoked in a set."""

from farm.queue.v1 import queue_pb2
from farm_core.key_validity import KeyValidity

SECRET = "s" * 48
SESSION = "ses_0123456789abcdef"


class Routes:
    """SessionRoutes over a dict, spending token ids in a set."""

    def __init__(self) -> None:
        self.routes = {
            SESSION: queue_pb2.SessionRoute(
                session_id=SESSION, tenant="acme", agent_id="agent-1", endpoint="10.1.2.3:7150"
            )
        }
        self.spent: set[str] = set()

    async def route(self, session_id: str) -> queue_pb2.SessionRoute | None:
        return self.routes.get(session_id)

    async def spend(self, token_id: str) -> bool:
        if token_id in self.spent:
            return False
        self.spent.add(token_id)
        return True


REVOKED: set[str] = set()
"""Ids of the API keys the admission below takes for revoked."""
KEY_EXPIRES = 2_000_000_000.0
"""When the keys the admission below knows expire (a Unix time)."""


CURRENT_SECRET = "c0ffee0000000001"
"""The fingerprint of the keys' current secret; any other is a rotated-out one."""


async def key_in_force(key_id: str, tenant: str, secret: str = "") -> KeyValidity | None:
    if key_id in REVOKED:
        return None
    if not secret:
        return KeyValidity(key_expires=KEY_EXPIRES)
    # A secret other than the current one is past its grace.
    gone = None if secret == CURRENT_SECRET else 0.0
    return KeyValidity(secret, KEY_EXPIRES, gone)
