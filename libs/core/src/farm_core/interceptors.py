"""gRPC server interceptors written once for every service: metrics, logs, errors, identity."""

import contextvars
import logging
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import grpc
from google.protobuf.message import Message
from prometheus_client import Counter, Histogram

from farm_core.call_chain import (
    Around,
    CallChain,
    CallContext,
    CallInterceptor,
    Metadata,
    ServerCall,
    SyncContext,
    UnreadableRequest,
    wrap_handler,
)
from farm_core.errors import FarmError
from farm_core.identity import (
    CONFINED_ROLES,
    IDENTITY_HEADER,
    TENANT_HEADER,
    CredentialRole,
    Identity,
    IdentityVerifier,
    require_operator,
    reset_current_identity,
    set_current_identity,
)
from farm_core.logs import log_context
from farm_core.outages import outage
from farm_core.request_text import body_field_prefix, nul_field
from farm_core.scopes import ANY_IDENTITY, NO_IDENTITY, RPC_RULES, RpcRule

log = logging.getLogger(__name__)


__all__ = [
    "Around",
    "CallChain",
    "CallContext",
    "CallInterceptor",
    "ErrorMappingInterceptor",
    "IdentityInterceptor",
    "LogContextInterceptor",
    "Metadata",
    "MetricsInterceptor",
    "NulTextInterceptor",
    "ServerCall",
    "UnreadableRequest",
    "wrap_handler",
]

rpc_handled = Counter(
    "farm_grpc_server_handled_total", "RPCs handled, by method and outcome.", ["method", "code"]
)
rpc_seconds = Histogram(
    "farm_grpc_server_handling_seconds", "Time to handle an RPC, by method.", ["method"]
)


class MetricsInterceptor(CallInterceptor):
    """Counts RPCs and times them, by method and status code."""

    def around(self, method: str) -> Around:
        # The method's series are found once, not by label on every call.
        seconds = rpc_seconds.labels(method)
        handled_ok = rpc_handled.labels(method, "OK")

        def measured(call: ServerCall) -> CallContext:
            return _Measured(method, call, seconds, handled_ok)

        return measured


class _Measured(CallContext):
    __slots__ = ("_call", "_handled_ok", "_method", "_seconds", "_started")

    def __init__(self, method: str, call: ServerCall, seconds: Any, handled_ok: Any) -> None:
        self._method = method
        self._call = call
        self._seconds = seconds
        self._handled_ok = handled_ok
        self._started = time.perf_counter()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        self._seconds.observe(time.perf_counter() - self._started)
        if error is None:
            self._handled_ok.inc()
        else:
            status = self._call.context.code()
            code = status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"
            rpc_handled.labels(self._method, code).inc()
        return False


# What the target field (RpcRule.target) of a method's request names, by method or
# service prefix: the call's log lines carry it as their task or session id.
_LOGGED_TARGETS: Mapping[str, str] = {
    "/farm.tasks.v1.TaskService/": "task",
    "/farm.sessions.v1.SessionService/": "session",
    "/farm.admin.v1.AdminService/RequeueDeadLetter": "task",
}


def logged_ids(
    method: str, request: Any, rules: Mapping[str, RpcRule] = RPC_RULES
) -> dict[str, str]:
    """The task or session id a call of `method` with `request` is about, for log_context."""
    rule = rules.get(method)
    if rule is None or not rule.target or request is None:
        return {}
    for prefix, kind in _LOGGED_TARGETS.items():
        if method.startswith(prefix):
            target = getattr(request, rule.target, "")
            return {f"{kind}_id": target} if isinstance(target, str) and target else {}
    return {}


class LogContextInterceptor(CallInterceptor):
    """Every log line of a call about one task or session names it (see farm_core.logs)."""

    def around(self, method: str) -> Around | None:
        if not RPC_RULES.get(method, RpcRule("")).target:
            return None

        def bound(call: ServerCall) -> CallContext:
            return SyncContext(log_context(**logged_ids(method, call.request)))

        return bound


class ErrorMappingInterceptor(CallInterceptor):
    """Turns typed domain errors into gRPC statuses; anything else is INTERNAL, logged once.

    A part the call needs being busy or down (farm_core.outages) is UNAVAILABLE, saying which.
    """

    def around(self, method: str) -> Around:
        def mapped(call: ServerCall) -> CallContext:
            return _Mapped(method, call)

        return mapped


class _Mapped(CallContext):
    __slots__ = ("_call", "_method")

    def __init__(self, method: str, call: ServerCall) -> None:
        self._method = method
        self._call = call

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if error is None or isinstance(error, grpc.aio.AbortError):
            return False
        if isinstance(error, FarmError):
            await self._call.context.abort(error.code, error.message)
        elif (unreachable := outage(error)) is not None:
            log.warning("%s failed: %s", self._method, unreachable, exc_info=error)
            await self._call.context.abort(grpc.StatusCode.UNAVAILABLE, f"{unreachable}; try again")
        elif isinstance(error, Exception):
            log.error("%s failed", self._method, exc_info=error)
            await self._call.context.abort(
                grpc.StatusCode.INTERNAL, f"internal error in {self._method}"
            )
        return False


class NulTextInterceptor(CallInterceptor):
    """Refuses a request of the farm's own services with a NUL in any text field.

    INVALID_ARGUMENT naming the field, before the handler: PostgreSQL cannot store or
    compare such text (farm_core.request_text). Envoy's ext_authz check is not the
    farm's own message and is left alone.
    """

    def around(self, method: str) -> Around | None:
        if not method.startswith("/farm."):
            return None
        body_prefix = body_field_prefix(method)

        def checked(call: ServerCall) -> CallContext:
            return _TextChecked(call, body_prefix)

        return checked


class _TextChecked(CallContext):
    __slots__ = ("_body_prefix", "_call")

    def __init__(self, call: ServerCall, body_prefix: str) -> None:
        self._call = call
        self._body_prefix = body_prefix

    async def __aenter__(self) -> None:
        request = self._call.request
        field = nul_field(request) if isinstance(request, Message) else None
        if field is not None:
            await self._call.context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{field.removeprefix(self._body_prefix)}: must not contain a NUL character "
                "(\\u0000)",
            )


def _header(metadata: Metadata, name: str) -> str | bytes | None:
    """The value of header `name` in `metadata` (the last one, as dict() would keep)."""
    found: str | bytes | None = None
    for key, value in metadata:
        if key == name:
            found = value
    return found


class IdentityInterceptor(CallInterceptor):
    """Admits a call only with a valid identity token holding the method's scope.

    `method_scopes` maps each full method name ("/farm.tasks.v1.TaskService/GetTask")
    to the scope it needs, or ANY_IDENTITY. A method with no rule is refused, so a
    new RPC cannot go out unprotected. A method whose rule in `rules` is operator_only
    also needs an operator; its refusal names `bootstrap_tenant` if given.
    """

    def __init__(
        self,
        codec: IdentityVerifier,
        method_scopes: Mapping[str, str],
        bootstrap_tenant: str = "",
        rules: Mapping[str, RpcRule] = RPC_RULES,
    ) -> None:
        self._codec = codec
        self._method_scopes = dict(method_scopes)
        self._bootstrap_tenant = bootstrap_tenant
        self._operator_actions = {m: r.operator_only for m, r in rules.items() if r.operator_only}

    def around(self, method: str) -> Around | None:
        if self._method_scopes.get(method) == NO_IDENTITY:
            return None

        def admitted(call: ServerCall) -> CallContext:
            return _Admitted(self, method, call)

        return admitted

    async def admit(self, method: str, call: ServerCall) -> contextvars.Token[Identity]:
        """Checks the call's identity for `method` (aborting it if refused); binds it."""
        context = call.context
        required = self._method_scopes.get(method)
        if required is None:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{method} has no access rule")
        token = _header(call.metadata, IDENTITY_HEADER)
        if not isinstance(token, str) or not token:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing caller identity")
        try:
            identity = self._codec.decode(str(token))
        except FarmError as error:
            await context.abort(error.code, error.message)
        confined_to = CONFINED_ROLES.get(identity.role) if identity.role else None
        if confined_to is not None and required != confined_to:
            # Not even the methods any identity may call: the role's own work only.
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"the {identity.role} credential may not call {method}",
            )
        if identity.role is CredentialRole.AGENT:
            # An agent acts for the tenant of the task it stores for.
            identity = identity.acting_for(str(_header(call.metadata, TENANT_HEADER) or ""))
        if required != ANY_IDENTITY and not identity.has_scope(str(required)):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"this API key lacks the scope '{required}' that {method} needs",
            )
        if method in self._operator_actions:
            try:
                require_operator(identity, self._operator_actions[method], self._bootstrap_tenant)
            except FarmError as refusal:
                await context.abort(refusal.code, refusal.message)
        return set_current_identity(identity)


class _Admitted(CallContext):
    __slots__ = ("_binding", "_call", "_checker", "_method")

    def __init__(self, checker: IdentityInterceptor, method: str, call: ServerCall) -> None:
        self._checker = checker
        self._method = method
        self._call = call

    async def __aenter__(self) -> None:
        self._binding = await self._checker.admit(self._method, self._call)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        reset_current_identity(self._binding)
        return False
