"""Envoy's ext_authz check: an API key in, a signed identity header (or a 401) out."""

import functools
import json
from collections.abc import Mapping
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]
from prometheus_client import Counter

from farm_auth.json_body import BodyFields
from farm_auth.keys import MISSING_KEY, NOT_BEARER, KeyRefused
from farm_auth.ratelimit import retry_after_header
from farm_auth.session_check import SessionAdmission, SessionTarget, session_target
from farm_auth.shared_limits import SharedLimits
from farm_auth.verifier import KeyVerifier
from farm_core.errors import FarmError
from farm_core.identity import IDENTITY_HEADER, Identity, IdentitySigner

AUTHORIZATION_HEADER = "authorization"
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
    "unknown_field",
    "error",
)
# Refusals that presented some credential: they count against the source address.
FAILED_ATTEMPTS = frozenset({"malformed", "unknown", "revoked", "expired", "rotated"})

checks_total = Counter(
    "farm_auth_checks_total", "Envoy's checks of API keys, by outcome.", ["outcome"]
)
for _outcome in OUTCOMES:
    checks_total.labels(_outcome)


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


def request_header(request: external_auth_pb2.CheckRequest, name: str) -> str | None:
    """The value of header `name` (lower-case) of the request Envoy asks about."""
    http = request.attributes.request.http
    headers: Mapping[str, str] = http.headers
    if name in headers:
        return headers[name]
    # Envoy sends header_map instead of headers when told to encode raw headers.
    for header in http.header_map.headers:
        if header.key.lower() == name:
            return str(header.raw_value.decode() if header.raw_value else header.value)
    return None


def allowed(identity_token: str) -> external_auth_pb2.CheckResponse:
    """Envoy's answer for a valid key: pass, with the identity, without the raw key."""
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code_pb2.OK),
        ok_response=external_auth_pb2.OkHttpResponse(
            headers=[
                base_pb2.HeaderValueOption(
                    header=base_pb2.HeaderValue(key=IDENTITY_HEADER, value=identity_token),
                    append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
                )
            ],
            headers_to_remove=[AUTHORIZATION_HEADER],
        ),
    )


# Tokens are reused per identity for seconds, so a few hundred answers cover the busy keys.
PREBUILT_ANSWERS = 512


@functools.lru_cache(maxsize=PREBUILT_ANSWERS)
def prebuilt_allowed(identity_token: str) -> external_auth_pb2.CheckResponse:
    """`allowed(identity_token)`, built once per token: shared, so never to be changed."""
    return allowed(identity_token)


def is_grpc(request: external_auth_pb2.CheckRequest) -> bool:
    """Whether the checked request is a gRPC call (not HTTP/JSON)."""
    return (request_header(request, "content-type") or "").startswith("application/grpc")


def source_address(request: external_auth_pb2.CheckRequest) -> str:
    """The IP address of the client Envoy is asking about; '' when Envoy sent none."""
    return str(request.attributes.source.address.socket_address.address)


def denied(message: str, *, grpc_caller: bool = False) -> external_auth_pb2.CheckResponse:
    """Envoy's answer for a missing or invalid key: 401 saying why."""
    return _refusal(
        code_pb2.UNAUTHENTICATED,
        http_status_pb2.Unauthorized,
        message,
        [_header("www-authenticate", "Bearer")],
        grpc_caller=grpc_caller,
    )


def limited(
    message: str, retry_after_seconds: float, *, grpc_caller: bool = False
) -> external_auth_pb2.CheckResponse:
    """Envoy's answer for a caller over a limit: 429 with Retry-After (RESOURCE_EXHAUSTED)."""
    return _refusal(
        code_pb2.RESOURCE_EXHAUSTED,
        http_status_pb2.TooManyRequests,
        message,
        [_header("retry-after", retry_after_header(retry_after_seconds))],
        grpc_caller=grpc_caller,
    )


def bad_request(message: str) -> external_auth_pb2.CheckResponse:
    """Envoy's answer for an HTTP/JSON body the RPC cannot take: 400 (INVALID_ARGUMENT)."""
    return _refusal(
        code_pb2.INVALID_ARGUMENT, http_status_pb2.BadRequest, message, [], grpc_caller=False
    )


def _refusal(
    code: int,
    http_status: int,
    message: str,
    headers: list[base_pb2.HeaderValueOption],
    *,
    grpc_caller: bool,
) -> external_auth_pb2.CheckResponse:
    """A denial with `http_status` for HTTP callers and status `code` for gRPC callers.

    HTTP callers get a JSON body shaped like the transcoder's errors; for gRPC
    callers Envoy turns the body into the status message, so it is the bare text,
    and the grpc-status header overrides the status Envoy would derive from the
    HTTP status (which would make 429 UNAVAILABLE).
    """
    if grpc_caller:
        content_type, body = "text/plain", message
        headers = [*headers, _header("grpc-status", str(code))]
    else:
        content_type = "application/json"
        body = json.dumps({"code": code, "message": message})
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code, message=message),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=http_status),
            headers=[_header("content-type", content_type), *headers],
            body=body,
        ),
    )


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=key, value=value),
        append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
    )


class AuthorizationApi(external_auth_pb2_grpc.AuthorizationServicer):
    """envoy.service.auth.v3.Authorization: Envoy asks it about every request."""

    def __init__(
        self,
        verifier: KeyVerifier,
        codec: IdentitySigner,
        limits: SharedLimits,
        sessions: SessionAdmission | None = None,
    ) -> None:
        self._verifier = verifier
        self._codec = codec
        self._limits = limits
        self._sessions = sessions
        self._body_fields = BodyFields()

    async def Check(
        self, request: external_auth_pb2.CheckRequest, context: Any
    ) -> external_auth_pb2.CheckResponse:
        grpc_caller = is_grpc(request)
        address = source_address(request)
        blocked_for = self._limits.blocked_for(address) if address else 0.0
        if blocked_for > 0:
            checks_total.labels("address_blocked").inc()
            message = f"too many refused API keys from {address}; try again later"
            return limited(message, blocked_for, grpc_caller=grpc_caller)
        http = request.attributes.request.http
        target = session_target(http.path, request_header(request, "cookie"))
        if target is not None and self._sessions is not None:
            return await self._check_session(request, target, self._sessions)
        verified = await self._verified(request, grpc_caller=grpc_caller)
        if isinstance(verified, external_auth_pb2.CheckResponse):
            return verified
        # Only /v1/ calls carry their body here (envoy.yaml.j2); gRPC calls never do.
        body = http.raw_body or http.body.encode()
        if body:
            unknown = self._body_fields.unknown_field(http.method, http.path, body)
            if unknown is not None:
                checks_total.labels("unknown_field").inc()
                return bad_request(unknown)
        checks_total.labels("allowed").inc()
        return prebuilt_allowed(self._codec.encode(verified))

    async def _verified(
        self, request: external_auth_pb2.CheckRequest, *, grpc_caller: bool
    ) -> Identity | external_auth_pb2.CheckResponse:
        """The identity of the request's API key, or the refusal to answer with."""
        address = source_address(request)
        try:
            key = bearer_key(request_header(request, AUTHORIZATION_HEADER))
            verified = await self._verifier.verify(key)
        except KeyRefused as refused:
            checks_total.labels(refused.outcome).inc()
            if address and refused.outcome in FAILED_ATTEMPTS:
                await self._limits.record_failure(address)
            return denied(refused.message, grpc_caller=grpc_caller)
        except Exception:
            # The error interceptor logs it; Envoy answers 503 (never lets it through).
            checks_total.labels("error").inc()
            raise
        identity, rate = verified.identity, verified.rate_limit
        wait_seconds = await self._limits.take(identity.key_id, rate.per_second, rate.burst)
        if wait_seconds > 0:
            checks_total.labels("rate_limited").inc()
            message = (
                f"API key {identity.key_id} is over its rate limit of {rate.per_second} "
                f"requests a second (burst {rate.burst})"
            )
            return limited(message, wait_seconds, grpc_caller=grpc_caller)
        return identity

    async def _check_session(
        self,
        request: external_auth_pb2.CheckRequest,
        target: SessionTarget,
        sessions: SessionAdmission,
    ) -> external_auth_pb2.CheckResponse:
        """A request for a session's browser: admitted to its agent, or refused."""
        has_key = request_header(request, AUTHORIZATION_HEADER) is not None
        try:
            if has_key or not target.live:
                verified = await self._verified(request, grpc_caller=False)
                if isinstance(verified, external_auth_pb2.CheckResponse):
                    return verified
                admitted = await sessions.by_key(target, verified)
            else:
                admitted = await sessions.by_token(target)
        except FarmError as error:
            checks_total.labels(_SESSION_OUTCOMES.get(error.code, "error")).inc()
            return refused(error)
        checks_total.labels("allowed").inc()
        response = allowed(self._codec.encode(admitted.identity))
        response.dynamic_metadata.CopyFrom(admitted.metadata())
        if admitted.set_cookie:
            response.ok_response.response_headers_to_add.append(
                _header("set-cookie", admitted.set_cookie)
            )
        return response


_SESSION_OUTCOMES = {
    grpc.StatusCode.UNAUTHENTICATED: "unknown",
    grpc.StatusCode.PERMISSION_DENIED: "forbidden",
    grpc.StatusCode.NOT_FOUND: "not_found",
    grpc.StatusCode.UNAVAILABLE: "error",
}
_HTTP_STATUS = {
    grpc.StatusCode.UNAUTHENTICATED: http_status_pb2.Unauthorized,
    grpc.StatusCode.PERMISSION_DENIED: http_status_pb2.Forbidden,
    grpc.StatusCode.NOT_FOUND: http_status_pb2.NotFound,
    grpc.StatusCode.UNAVAILABLE: http_status_pb2.ServiceUnavailable,
}


def refused(error: FarmError) -> external_auth_pb2.CheckResponse:
    """Envoy's answer for a request refused with `error` (HTTP callers: its status, JSON body)."""
    http_status = _HTTP_STATUS.get(error.code, http_status_pb2.ServiceUnavailable)
    headers = [_header("www-authenticate", "Bearer")] if http_status == 401 else []
    return _refusal(error.code.value[0], http_status, error.message, headers, grpc_caller=False)
