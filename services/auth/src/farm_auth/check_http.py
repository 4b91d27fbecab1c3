"""The edge's check served over HTTP, as Envoy's ext_authz `http_service` asks it.

Envoy sends each request's method, `/check` + its path, the headers the check reads
(envoy/envoy.yaml.j2's `allowed_headers`), the client's address in
x-farm-client-address and its content type in x-farm-content-type (both set by
Envoy, never the client's own) and, for /v1/ calls, the body. The answer: 200
with x-farm-identity (and, for a session's browser, the agent in x-farm-agent,
which Envoy turns into dynamic metadata), or the refusal itself (status, headers,
body) that Envoy hands the client.
"""

import logging
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

from aiohttp import web
from opentelemetry.trace import Status, StatusCode

from farm_auth.authz import AUTHORIZATION_HEADER, Authorizer, EdgeRequest, Verdict
from farm_core.app_listener import AppListener
from farm_core.console_headers import CONSOLE_CLIENT_HEADER, CONSOLE_CREDENTIAL_HEADER
from farm_core.identity import IDENTITY_HEADER
from farm_core.item_refusals import REFUSED_ITEMS_HEADER
from farm_core.trace_context import serving

log = logging.getLogger(__name__)

CHECK_PATH_PREFIX = "/check"
"""Envoy's `path_prefix`: the checked request's path follows it."""
HEALTH_PATH = "/healthz"
CLIENT_ADDRESS_HEADER = "x-farm-client-address"
"""The client's IP address: the TCP peer, set by Envoy on every check."""
AGENT_HEADER = "x-farm-agent"
"""The agent holding a session (host:port): Envoy's dynamic metadata for its routing."""
HEADERS_TO_REMOVE = "x-envoy-auth-headers-to-remove"
# Envoy sends a body of at most the edge's request limit (1 MiB by default); the
# headroom keeps a larger --max-request-bytes from turning into 413s here.
MAX_CHECKED_BODY_BYTES = 64 * 1024 * 1024
# Envoy takes up to 60 KiB of request headers (max_request_headers_kb) and hands the
# check the path and the headers it reads as they came: aiohttp's 8 KiB default
# refused a longer one with a 400 of its own (naming /check, echoing the value).
MAX_CHECKED_HEADER_BYTES = 64 * 1024
# The raw key, and the console's credential, go no further than the edge.
_REMOVED = ",".join((AUTHORIZATION_HEADER, CONSOLE_CREDENTIAL_HEADER, CONSOLE_CLIENT_HEADER))


def edge_request(
    method: str, raw_path: str, headers: Mapping[str, str], body: bytes
) -> EdgeRequest:
    """The request Envoy asks about, from its check request."""
    return EdgeRequest(
        method=method,
        path=raw_path.removeprefix(CHECK_PATH_PREFIX) or "/",
        headers=headers,
        body=body,
        source_address=headers.get(CLIENT_ADDRESS_HEADER, ""),
    )


def http_answer(verdict: Verdict) -> web.Response:
    """The HTTP answer Envoy reads `verdict` from."""
    if not verdict.allowed:
        # The content type as the verdict has it: Envoy hands it on to the client.
        return web.Response(
            status=verdict.http_status, headers=dict(verdict.headers), body=verdict.body.encode()
        )
    headers = {IDENTITY_HEADER: verdict.identity_token, HEADERS_TO_REMOVE: _REMOVED}
    if verdict.agent:
        headers[AGENT_HEADER] = verdict.agent
    if verdict.set_cookie:
        headers["set-cookie"] = verdict.set_cookie
    if verdict.refused_items:
        headers[REFUSED_ITEMS_HEADER] = verdict.refused_items
    return web.Response(status=200, headers=headers)


class CheckServer:
    """The HTTP listener Envoy's ext_authz filter calls, beside auth's gRPC server."""

    def __init__(
        self, authorizer: Authorizer, host: str, port: int, tls: ssl.SSLContext | None
    ) -> None:
        self._authorizer = authorizer
        self._host = host
        app = web.Application(client_max_size=MAX_CHECKED_BODY_BYTES)
        app.router.add_get(HEALTH_PATH, self._health)
        app.router.add_route("*", CHECK_PATH_PREFIX + "{path:.*}", self._check)
        self._listener = AppListener(
            app,
            host,
            port,
            tls,
            max_line_size=MAX_CHECKED_HEADER_BYTES,
            max_field_size=MAX_CHECKED_HEADER_BYTES,
        )
        self.serving = False

    @property
    def port(self) -> int:
        """The port bound (the one asked for, or the one chosen for 0)."""
        return self._listener.port

    async def start(self) -> None:
        """Listens; raises OSError if the port is taken."""
        await self._listener.start()
        self.serving = True
        log.info("auth's edge check on %s:%d%s", self._host, self.port, CHECK_PATH_PREFIX)

    async def close(self) -> None:
        """Stops listening; idempotent."""
        self.serving = False
        await self._listener.close()

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.serving else 503, text="ok\n")

    async def _check(self, request: web.Request) -> web.Response:
        body = await request.read() if request.body_exists else b""
        checked = edge_request(request.method, request.raw_path, request.headers, body)
        # Without its query: a view or CDP token there must reach no trace and no log.
        path = urlsplit(checked.path).path
        # Envoy's ext_authz span is the parent (its traceparent on the check request).
        with serving(
            "ext_authz check",
            request.headers,
            attributes={"http.request.method": checked.method, "url.path": path},
        ) as span:
            try:
                return http_answer(await self._authorizer.check(checked))
            except Exception as error:
                # Any 5xx is an error to Envoy: it answers 503 (status_on_error, its own
                # body) and never lets the request through; so does a 503 refusal (a
                # session's route unreadable), whose message Envoy does not pass on.
                log.exception("the edge check of %s %s failed", checked.method, path)
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                return web.Response(status=500, text="the check failed\n")
