"""The MCP service's HTTP server: /mcp (streamable HTTP) and /healthz, run by uvicorn.

Envoy routes /mcp here after its ext_authz check. The tools call the scheduler's
SessionService and storage's ArtifactService over gRPC (mutual TLS when the farm
runs with it) with the caller's identity, which auth's IdentityRenewalService
renews for this service's credential when it is about to expire. On SIGTERM,
/healthz turns 503, uvicorn lets requests in flight finish within the grace
period, and every browser still held is closed; the closes of sessions still
opening (LateCloses) get another grace period, then are cancelled.
"""

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.metadata import version

import anyio
import grpc
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from farm.auth.v1 import renewal_pb2_grpc
from farm.sessions.v1 import sessions_pb2_grpc
from farm.storage.v1 import artifacts_pb2_grpc
from farm_core import mcp_refusals
from farm_core.http_server import serve_asgi
from farm_core.identity import IdentityVerifier
from farm_core.transport import aio_channel
from farm_mcp.connections import HttpConnections
from farm_mcp.endpoint import McpEndpoint
from farm_mcp.identity import FarmIdentityBackend, RequireSessionsScope
from farm_mcp.renewal import IdentityRenewer
from farm_mcp.settings import McpSettings
from farm_mcp_tools.browser import BrowserSettings, LateCloses
from farm_mcp_tools.farm import CHANNEL_OPTIONS, FarmApi
from farm_mcp_tools.runner import ToolLimits
from farm_mcp_tools.server import build_server

log = logging.getLogger(__name__)

MCP_PATH = mcp_refusals.MCP_PATH
SERVICE_NAME = "mcp"


@dataclass
class Health:
    """Whether the service takes requests: false once it has been asked to stop."""

    serving: bool = False
    channels: list[grpc.aio.Channel] = field(default_factory=list)


def tool_limits(settings: McpSettings) -> ToolLimits:
    """The tools' limits as the service's settings set them."""
    return ToolLimits(
        call_seconds=settings.tool_timeout_seconds,
        max_text_chars=settings.max_text_chars,
        action_ms=round(settings.action_timeout_seconds * 1000),
    )


def build_app(settings: McpSettings) -> Starlette:
    """The Starlette application: /mcp behind the identity check, and /healthz."""
    tls = settings.internal_tls()
    scheduler = aio_channel(settings.scheduler_address, tls, CHANNEL_OPTIONS)
    storage = aio_channel(settings.storage_address, tls, CHANNEL_OPTIONS)
    auth = aio_channel(settings.auth_address, tls)
    credential = settings.credential.get_secret_value() if settings.credential else None
    renewer = IdentityRenewer(
        renewal_pb2_grpc.IdentityRenewalServiceStub(auth),
        credential,
        settings.renew_before_seconds,
    )
    farm = FarmApi(
        sessions_pb2_grpc.SessionServiceStub(scheduler),
        artifacts_pb2_grpc.ArtifactServiceStub(storage),
        settings.public_url,
        refresh=renewer.refresh,
    )
    verifier = IdentityVerifier(settings.resolved_identity_public_key())
    late_closes = LateCloses(settings.grace_seconds)
    connections = HttpConnections(
        farm,
        BrowserSettings(idle_timeout_seconds=settings.idle_timeout_seconds),
        close_timeout=settings.tool_timeout_seconds,
        late_closes=late_closes,
    )
    mcp_server = build_server(connections, tool_limits(settings), version("farm-mcp"))
    # Builds the SDK's session manager. Every request needs the farm's API key, which a
    # web page cannot send for a user, so the SDK's DNS-rebinding guard (meant for
    # servers open on localhost) is off: behind Envoy, Host names the edge.
    mcp_server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        session_idle_timeout=settings.idle_timeout_seconds,
        max_sessions=settings.max_connections,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = mcp_server.session_manager
    endpoint = McpEndpoint(StreamableHTTPASGIApp(manager), connections)
    health = Health(channels=[scheduler, storage, auth])

    async def healthz(request: Request) -> Response:
        status = "SERVING" if health.serving else "NOT_SERVING"
        return JSONResponse({"status": status}, status_code=200 if health.serving else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            late_closes.running(),
            manager.run(),
            anyio.create_task_group() as sweeper,
        ):
            sweeper.start_soon(_sweep, connections, settings)
            health.serving = True
            log.info("mcp serving %s on %s:%d", MCP_PATH, settings.host, settings.port)
            try:
                yield
            finally:
                health.serving = False
                sweeper.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await connections.end_all()
                    for channel in health.channels:
                        await channel.close()

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route(MCP_PATH, RequireSessionsScope(endpoint)),
        ],
        middleware=[Middleware(AuthenticationMiddleware, backend=FarmIdentityBackend(verifier))],
        lifespan=lifespan,
    )


async def _sweep(connections: HttpConnections, settings: McpSettings) -> None:
    """Closes idle connections' browsers, every sweep_seconds."""
    while True:
        await anyio.sleep(settings.sweep_seconds)
        await connections.end_idle(settings.idle_timeout_seconds)


def serve(settings: McpSettings) -> None:
    """Serves until SIGTERM or SIGINT, then drains for up to FARM_GRACE_SECONDS."""
    serve_asgi(
        SERVICE_NAME, settings, settings.port, settings.metrics_port, lambda: build_app(settings)
    )
