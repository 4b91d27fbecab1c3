"""The agent's sessions as one part of the agent: manager, endpoints, orders and clocks."""

import logging
import socket

from nats.aio.client import Client

from farm_agent.browser.pool import BrowserPool
from farm_agent.places import Places
from farm_agent.saved.client import SavedState
from farm_agent.saved.keeper import CaptureKeeper
from farm_agent.sessions.endpoints import SessionEndpoints
from farm_agent.sessions.manager import SessionManager
from farm_agent.sessions.orders import SessionOrders
from farm_agent.settings import AgentSettings
from farm_agent.work.uploader import ArtifactUploader
from farm_core.identity import IdentityVerifier
from farm_core.key_revocations import KeyRevocationWatch
from farm_core.key_streams import KeyStreams
from farm_core.periodic import Periodic

log = logging.getLogger(__name__)

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
"""Listen addresses that stand for every address of the machine (and none to connect to)."""


class AgentSessions:
    """Opens sessions on the scheduler's orders and serves their browsers to Envoy."""

    def __init__(
        self,
        settings: AgentSettings,
        pool: BrowserPool,
        uploader: ArtifactUploader,
        places: Places,
        saved: SavedState | None = None,
    ) -> None:
        self._settings = settings
        # Without `saved`, a session with a profile does not open (and a comparison fails).
        self._keeper = CaptureKeeper(uploader, saved)
        self.manager = SessionManager(settings, pool, places, self._keeper)
        # A socket outlives the check of the key that opened it: it ends with the key.
        self._key_streams = KeyStreams()
        self._endpoints = SessionEndpoints(
            self.manager,
            IdentityVerifier(settings.resolved_identity_public_key()),
            settings.session_host or settings.host,
            settings.session_port,
            settings.internal_ssl_server(),
            self._key_streams,
            settings.public_url,
        )
        self._orders: SessionOrders | None = None
        self._key_revocations = KeyRevocationWatch(
            settings.nats(),
            self._key_streams.revoked,
            settings.nats_replicas,
            on_secrets=self._key_streams.secrets_changed,
        )
        self._clocks = Periodic(
            "session-clocks", self.manager.close_due, settings.session_check_seconds
        )

    @property
    def session_ids(self) -> list[str]:
        """The sessions open here now."""
        return self.manager.session_ids

    @property
    def endpoint(self) -> str:
        """host:port Envoy reaches the session endpoints at."""
        return self.manager.endpoint

    async def start(self, connection: Client) -> None:
        """Serves the endpoints, then takes orders and watches the sessions' clocks."""
        settings = self._settings
        await self._endpoints.start()
        self._key_revocations.start()
        endpoint = f"{advertised_host(settings)}:{self._endpoints.port}"
        js = connection.jetstream(timeout=settings.nats_request_timeout_seconds)
        self.manager.attach(js, endpoint)
        self._orders = SessionOrders(
            connection,
            self._settings.id,
            self.manager,
            self._keeper,
            self._settings.max_result_text_bytes,
        )
        await self._orders.start()
        self._clocks.start()

    async def drain(self, grace_seconds: float) -> None:
        """Takes no new sessions; open ones may go on for a while, then close (AGENT_DRAINING)."""
        await self.manager.drain(min(grace_seconds, self._settings.session_drain_seconds))

    async def close(self) -> None:
        """Closes every session, stops taking orders and serving endpoints."""
        await self._clocks.cancel()
        await self.manager.drain(0)
        if self._orders is not None:
            await self._orders.stop()
        await self._endpoints.close()
        await self._key_revocations.close()
        await self._key_streams.close()


def advertised_host(settings: AgentSettings) -> str:
    """The address Envoy reaches this agent's session endpoints at.

    FARM_AGENT_SESSION_ADVERTISE_HOST, else the address they listen on; one that
    listens on every address (0.0.0.0 or ::, as in a container) is reached at the
    address this machine's name resolves to, since Envoy connects to an address.
    """
    if settings.session_advertise_host:
        return settings.session_advertise_host
    host = settings.session_host or settings.host
    if host not in WILDCARD_HOSTS:
        return host
    return socket.gethostbyname(socket.gethostname())
