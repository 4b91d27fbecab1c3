"""The edge's check of every request: an API key in, a signed identity (or a refusal) out.

Transport-neutral: Envoy asks over HTTP (farm_auth.check_http, its ext_authz
`http_service`); this module decides, and says what to answer as a `Verdict`.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import grpc
from prometheus_client import Counter

from farm_auth.console_clients import ConsoleClients
from farm_auth.json_body import BodyFields, RefusedItems, too_many
from farm_auth.keys import MISSING_KEY, NOT_BEARER, KeyRefused
from farm_auth.query_params import query_refusal
from farm_auth.route_table import MethodRefusal, RouteTable, method_refusal
from farm_auth.session_check import SessionAdmission, SessionTarget, session_target
from farm_auth.shared_limits import SharedLimits
from farm_auth.verifier import KeyVerifier
from farm_core import item_refusals
from farm_core.errors import HTTP_STATUS_OF_CODE, FarmError
from farm_core.failed_attempts import retry_after_header
from farm_core.identity import Identity, IdentitySigner
from farm_core.mcp_refusals import MCP_PATH, mcp_refusal_body
from farm_core.nats_link import NatsPause

AUTHORIZATION_HEADER = "authorization"
CONTENT_TYPE_HEADER = "x-farm-content-type"
"""The checked request's content type, as Envoy hands it to the check under this name.

Never as content-type itself: Envoy's client for the check would then take the check
for a gRPC call, and its own reply when auth does not answer (a timeout, a refused
connection) for a gRPC answer of HTTP status 200, which ext_authz lets through.
"""
OUTCOMES = (
    "allowed",
    "missing",
    "malformed",
    "unknown",
    "revoked",
    "expired",
    "rotated",
    "rate_limited",
    "address_blocked",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "unknown_field",
    "bad_value",
    "bad_json",
    "error",
)
# Refusals that presented some credential: they count against the source address.
FAILED_ATTEMPTS = frozenset({"malformed", "unknown", "revoked", "expired", "rotated"})

checks_total = Counter(
    "farm_auth_checks_total", "Envoy's checks of API keys, by outcome.", ["outcome"]
)
# Each outcome's child, made once: labels() looks the child up under a lock on every call.
_CHECKS = {outcome: checks_total.labels(outcome) for outcome in OUTCOMES}


def _count(outcome: str) -> None:
    """Counts one check of `outcome`."""
    child = _CHECKS.get(outcome)
    (checks_total.labels(outcome) if child is None else child).inc()


# Envoy waits 2 s for the check (envoy.yaml.j2). Each of its NATS calls (a rate
# count, a session's route, a view token) waits at most NATS_CALL_SECONDS; after one
# goes unanswered, none asks NATS for NATS_PAUSE_SECONDS: a stalled nats-server
# answers nothing, and a key's counts queue behind one another on its lock.
NATS_CALL_SECONDS = 0.5
NATS_PAUSE_SECONDS = 2.0


def check_nats_pause() -> NatsPause:
    """The one pause the check's NATS links share: a stalled nats-server stalls them all."""
    return NatsPause(NATS_CALL_SECONDS, NATS_PAUSE_SECONDS)


OK: int = grpc.StatusCode.OK.value[0]
_STATUS_OF_CODE = {status.value[0]: status for status in grpc.StatusCode}
_SESSION_OUTCOMES = {
    grpc.StatusCode.UNAUTHENTICATED: "unknown",
    grpc.StatusCode.PERMISSION_DENIED: "forbidden",
    grpc.StatusCode.NOT_FOUND: "not_found",
    grpc.StatusCode.UNAVAILABLE: "error",
}


@dataclass(frozen=True)
class EdgeRequest:
    """The request Envoy asks about: its method, path (with query), headers, body, client."""

    method: str
    path: str
    # Lower-case names.
    headers: Mapping[str, str]
    body: bytes = b""
    # The client's IP address as Envoy saw it; '' when Envoy sent none.
    source_address: str = ""

    def header(self, name: str) -> str | None:
        """The value of header `name` (lower-case), None if absent."""
        return self.headers.get(name)

    @property
    def grpc_caller(self) -> bool:
        """Whether the request is a gRPC call (not HTTP/JSON)."""
        return (self.header(CONTENT_TYPE_HEADER) or "").startswith("application/grpc")


@dataclass(frozen=True)
class Verdict:
    """The check's answer: let through as `identity_token`, or refused with `code`.

    A refusal's `http_status`, `headers` and `body` are what the client gets; for a
    gRPC caller the body is the bare message and `grpc-status` is among the headers.
    """

    code: int
    message: str = ""
    identity_token: str = ""
    http_status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    # Let through to a session's browser: the agent's endpoint (host:port) Envoy
    # connects to, and the live ticket cookie to set on the client, if any.
    agent: str = ""
    set_cookie: str = ""
    identity: Identity | None = field(default=None, compare=False)
    # The session's browser the request is for (its path read once), if any.
    session: SessionTarget | None = field(default=None, compare=False)
    # Let through, a batch's items with unknown fields (farm_core.item_refusals), if any.
    refused_items: str = ""

    @property
    def allowed(self) -> bool:
        """Whether the request may pass."""
        return self.code == OK


def bearer_key(authorization: str | None) -> str:
    """The key in an `authorization: Bearer <key>` value; raises KeyRefused if there is none."""
    if authorization is None or not authorization.strip():
        raise KeyRefused("missing", MISSING_KEY)
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise KeyRefused("malformed", NOT_BEARER)
    key = credential.strip()
    if not key:
        raise KeyRefused("missing", MISSING_KEY)
    return key


def refusal(
    status: grpc.StatusCode,
    message: str,
    headers: tuple[tuple[str, str], ...] = (),
    *,
    grpc_caller: bool = False,
) -> Verdict:
    """A refusal with `status` for gRPC callers and its HTTP status for HTTP callers.

    HTTP callers get a JSON body shaped like the transcoder's errors; for gRPC
    callers Envoy turns the body into the status message, so it is the bare text,
    and the grpc-status header overrides the status Envoy would derive from the
    HTTP status (which would make 429 UNAVAILABLE).
    """
    code: int = status.value[0]
    if grpc_caller:
        content_type, body = "text/plain", message
        headers = (*headers, ("grpc-status", str(code)))
    else:
        content_type = "application/json"
        body = json.dumps({"code": code, "message": message})
    return Verdict(
        code=code,
        message=message,
        http_status=HTTP_STATUS_OF_CODE[status],
        headers=(("content-type", content_type), *headers),
        body=body,
    )


def denied(message: str, *, grpc_caller: bool = False) -> Verdict:
    """The answer for a missing or invalid key: 401 saying why."""
    return refusal(
        grpc.StatusCode.UNAUTHENTICATED,
        message,
        (("www-authenticate", "Bearer"),),
        grpc_caller=grpc_caller,
    )


def limited(message: str, retry_after_seconds: float, *, grpc_caller: bool = False) -> Verdict:
    """The answer for a caller over a limit: 429 with Retry-After (RESOURCE_EXHAUSTED)."""
    return refusal(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        message,
        (("retry-after", retry_after_header(retry_after_seconds)),),
        grpc_caller=grpc_caller,
    )


def method_not_allowed(wrong_method: MethodRefusal) -> Verdict:
    """405 with Allow for an HTTP/JSON path asked with a method it does not take.

    UNIMPLEMENTED in the body, the gRPC code grpc-gateway gives a 405 too.
    """
    verdict = refusal(
        grpc.StatusCode.UNIMPLEMENTED, wrong_method.message, (("allow", wrong_method.allow),)
    )
    return replace(verdict, http_status=405)


def refused(error: FarmError) -> Verdict:
    """The answer for a request for a session's browser refused with `error`.

    A fault (a 5xx code) is UNAVAILABLE: Envoy answers any 5xx with its own 503.
    """
    status = error.code
    if HTTP_STATUS_OF_CODE[status] >= 500:
        status = grpc.StatusCode.UNAVAILABLE
    unauthenticated = status == grpc.StatusCode.UNAUTHENTICATED
    headers = (("www-authenticate", "Bearer"),) if unauthenticated else ()
    return refusal(status, error.message, headers)


class Authorizer:
    """Decides about every request Envoy asks about: who it is, and whether it may pass."""

    def __init__(
        self,
        verifier: KeyVerifier,
        codec: IdentitySigner,
        limits: SharedLimits,
        sessions: SessionAdmission | None = None,
        console: ConsoleClients | None = None,
    ) -> None:
        self._verifier = verifier
        self._codec = codec
        self._limits = limits
        self._sessions = sessions
        self._console = console
        self._body_fields = BodyFields()
        self._routes = RouteTable()

    async def check(self, request: EdgeRequest) -> Verdict:
        """The verdict on `request`; a refusal of /mcp as the JSON-RPC error MCP clients show."""
        verdict = await self._decide(request)
        if verdict.allowed or urlsplit(request.path).path != MCP_PATH:
            return verdict
        body = mcp_refusal_body(_STATUS_OF_CODE[verdict.code], verdict.message)
        return replace(verdict, body=body)

    async def _decide(self, request: EdgeRequest) -> Verdict:
        """The verdict on `request`, its refusals in the HTTP/JSON API's form."""
        if self._console is not None:
            # A console's call for a browser counts against that browser, not the console.
            counted = self._console.counted_address(request.headers, request.source_address)
            if counted != request.source_address:
                # Copying the request cost each check about 2 µs, ten times the lookup.
                request = replace(request, source_address=counted)
        grpc_caller = request.grpc_caller
        address = request.source_address
        blocked_for = self._limits.blocked_for(address) if address else 0.0
        if blocked_for > 0:
            _count("address_blocked")
            message = f"too many refused API keys from {address}; try again later"
            return limited(message, blocked_for, grpc_caller=grpc_caller)
        target = session_target(request.path, request.header("cookie"))
        if target is not None and self._sessions is not None:
            return replace(
                await self._check_session(request, target, self._sessions), session=target
            )
        verified = await self._verified(request, grpc_caller=grpc_caller)
        if isinstance(verified, Verdict):
            return verified
        # The path's routes, found once for the three checks that read them.
        routes = self._routes.lookup(request.path)
        wrong_method = method_refusal(request.method, routes)
        if wrong_method is not None:
            _count("method_not_allowed")
            return method_not_allowed(wrong_method)
        bad_query = query_refusal(request.method, routes)
        if bad_query is not None:
            _count("bad_value")
            return refusal(grpc.StatusCode.INVALID_ARGUMENT, bad_query)
        # Only /v1/ calls carry their body here (envoy.yaml.j2); gRPC calls never do.
        refused_items = ""
        if request.body:
            refused = self._body_fields.refusal(request.method, routes, request.body)
            if isinstance(refused, RefusedItems):
                header = item_refusals.encode(refused.items)
                if header is None:
                    _count("unknown_field")
                    return refusal(grpc.StatusCode.INVALID_ARGUMENT, too_many(refused))
                refused_items = header
            elif refused is not None:
                _count(refused.outcome)
                return refusal(grpc.StatusCode.INVALID_ARGUMENT, refused.message)
        _count("allowed")
        return Verdict(
            code=OK,
            identity_token=self._codec.encode(verified),
            identity=verified,
            refused_items=refused_items,
        )

    async def _verified(self, request: EdgeRequest, *, grpc_caller: bool) -> Identity | Verdict:
        """The identity of the request's API key, or the refusal to answer with."""
        address = request.source_address
        try:
            key = bearer_key(request.header(AUTHORIZATION_HEADER))
            verified = await self._verifier.verify(key)
        except KeyRefused as refused_key:
            _count(refused_key.outcome)
            if address and refused_key.outcome in FAILED_ATTEMPTS:
                await self._limits.record_failure(address)
            return denied(refused_key.message, grpc_caller=grpc_caller)
        except Exception:
            # Logged where the check is served; Envoy answers 503 (never lets it through).
            _count("error")
            raise
        identity, rate = verified.identity, verified.rate_limit
        wait_seconds = await self._limits.take(identity.key_id, rate.per_second, rate.burst)
        if wait_seconds > 0:
            _count("rate_limited")
            requests = "request" if rate.per_second == 1 else "requests"
            message = (
                f"API key {identity.key_id} is over its rate limit of {rate.per_second} "
                f"{requests} a second (burst {rate.burst})"
            )
            return limited(message, wait_seconds, grpc_caller=grpc_caller)
        return identity

    async def _check_session(
        self, request: EdgeRequest, target: SessionTarget, sessions: SessionAdmission
    ) -> Verdict:
        """A request for a session's browser: admitted to its agent, or refused."""
        has_key = request.header(AUTHORIZATION_HEADER) is not None
        try:
            # A token (CDP or view) only when no key is given: a key is never weakened by one.
            if has_key or not (target.live or target.query_token):
                verified = await self._verified(request, grpc_caller=False)
                if isinstance(verified, Verdict):
                    return verified
                admitted = await sessions.by_key(target, verified)
            else:
                admitted = await sessions.by_token(target)
        except FarmError as error:
            _count(_SESSION_OUTCOMES.get(error.code, "error"))
            return refused(error)
        _count("allowed")
        return Verdict(
            code=OK,
            identity_token=self._codec.encode(admitted.identity),
            identity=admitted.identity,
            agent=admitted.route.endpoint,
            set_cookie=admitted.set_cookie,
        )
