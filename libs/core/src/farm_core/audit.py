"""The audit interceptor: every mutating call and every refused call becomes an AuditRecord."""

import os
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Protocol

import grpc
from google.protobuf import timestamp_pb2

from farm.audit.v1 import audit_pb2
from farm_core.errors import FarmError
from farm_core.identity import IDENTITY_HEADER, Identity, IdentityVerifier
from farm_core.interceptors import Around, CallContext, CallInterceptor, ServerCall
from farm_core.scopes import NO_IDENTITY, RPC_RULES, RpcRule

DENIALS: frozenset[grpc.StatusCode] = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)
"""Outcomes recorded for every RPC, mutating or not."""

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_MAX_TEXT = 1000
# The rule of a method missing from the rules: no scope, so only its refusal is recorded.
_NO_RULE = RpcRule(scope="")


class AuditSink(Protocol):
    """Where records go; AuditPublisher in a service, a list in a unit test."""

    def submit(self, record: audit_pb2.AuditRecord) -> None:
        """Takes `record` without waiting."""


def trace_id(headers: Mapping[str, str]) -> str:
    """The call's trace id: from `traceparent`, else `x-request-id`, else a new one."""
    match = _TRACEPARENT.match(headers.get("traceparent", "").strip().lower())
    if match:
        return match.group(1)
    request_id = headers.get("x-request-id", "").strip()
    return request_id[:_MAX_TEXT] if request_id else os.urandom(16).hex()


def field_text(message: Any, path: str) -> str:
    """The value at dotted `path` of `message` as text; "" when absent."""
    value: Any = message
    for name in path.split("."):
        value = getattr(value, name, None)
        if value is None:
            return ""
    return str(value)[:_MAX_TEXT]


def audit_record(
    *,
    source: str,
    rpc: str,
    outcome: str,
    headers: Mapping[str, str],
    identity: Identity | None = None,
    target: str = "",
    message: str = "",
) -> audit_pb2.AuditRecord:
    """An AuditRecord of a call that ended just now."""
    # The clock read and the id's random bytes directly: Timestamp.GetCurrentTime and
    # uuid4 cost about 2 µs each, on every create.
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    return audit_pb2.AuditRecord(
        id=f"aud_{os.urandom(16).hex()}",
        time=timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos),
        tenant=identity.tenant if identity else "",
        key_id=identity.key_id if identity else "",
        rpc=rpc[:_MAX_TEXT],
        target=target,
        outcome=outcome,
        trace_id=trace_id(headers),
        source=source,
        message=message[:_MAX_TEXT],
    )


def batch_note(response: Any) -> str:
    """The message of a CreateTasks that answered: items that got a task, and those refused.

    The call is OK however many items were refused (quota, scope, a bad field), so
    its record says which: a refusal of one item shows in the log as a call's does.
    """
    errors = list(response.errors)
    items = len(response.tasks) + len(errors)
    note = f"{len(response.tasks)} of {items} items got a task"
    if not errors:
        return note
    codes = Counter(error.code for error in errors)
    counted = ", ".join(f"{code} {count}" for code, count in sorted(codes.items()))
    refused = ", ".join(f"requests[{error.index}] {error.code}" for error in errors)
    return f"{note}; {len(errors)} refused ({counted}): {refused}"


_OK_NOTES: Mapping[str, Callable[[Any], str]] = {
    "/farm.tasks.v1.TaskService/CreateTasks": batch_note,
}
"""The message of a call that succeeded, by method: most say nothing more than OK."""


def cancel_items(request: Any, response: Any) -> list[tuple[str, str, str]]:
    """A CancelTasks that answered, as CancelTask calls: (target, outcome, message) per id.

    Each id the request names once, as its own CancelTask would have been recorded:
    OK for a task cancelled now or ended before (the message says which), else the
    code its error names, so the log is searched by task id as for single cancels.
    """
    errors = {error.index: error for error in response.errors}
    ended = set(response.already_ended)
    tasks = iter(response.tasks)
    items: dict[str, tuple[str, str, str]] = {}
    for index, task_id in enumerate(request.ids):
        error = errors.get(index)
        if error is not None:
            item = (task_id[:_MAX_TEXT], error.code, error.message)
        else:
            task = next(tasks, None)
            if task is None:
                break
            note = "had ended already" if task.id in ended else "cancelled"
            item = (
                task.id,
                grpc.StatusCode.OK.name,
                f"{note} (one of a batch of {len(request.ids)})",
            )
        items.setdefault(item[0], item)
    return list(items.values())


_PER_ITEM: Mapping[str, Callable[[Any, Any], list[tuple[str, str, str]]]] = {
    "/farm.tasks.v1.TaskService/CancelTasks": cancel_items,
}
"""Calls that succeeded recorded as one record per object they acted on, by method."""


class AuditInterceptor(CallInterceptor):
    """Records each call to a mutating RPC, and each refused call to any RPC.

    Sits outside the error-mapping and identity interceptors, so it sees the final
    status and the refusals the identity check makes. It reads the identity token
    itself: the identity interceptor's binding ends before the status is known.
    """

    def __init__(
        self,
        source: str,
        codec: IdentityVerifier,
        sink: AuditSink,
        rules: Mapping[str, RpcRule] = RPC_RULES,
    ) -> None:
        self._source = source
        self._codec = codec
        self._sink = sink
        self._rules = rules

    def around(self, method: str) -> Around | None:
        rule = self._rules.get(method, _NO_RULE)
        if rule.scope == NO_IDENTITY:
            return None

        def audited(call: ServerCall) -> CallContext:
            return _Audited(self, method, rule, call)

        return audited

    def record(
        self,
        method: str,
        rule: RpcRule,
        call: ServerCall,
        response: Any,
        code: grpc.StatusCode,
        message: str,
    ) -> None:
        """Hands the record of `call` to `method`, ended with `code`, to the sink."""
        # The headers are read only here: most calls are reads that are not recorded.
        headers = {key: value for key, value in call.metadata if isinstance(value, str)}
        request = call.request
        target = field_text(request, rule.target) if rule.target and request is not None else ""
        if not target and rule.created and response is not None:
            target = field_text(response, rule.created)
        self._sink.submit(
            audit_record(
                source=self._source,
                rpc=method,
                outcome=code.name,
                headers=headers,
                identity=self._identity(headers),
                target=target,
                message=message,
            )
        )

    def record_items(
        self, method: str, call: ServerCall, items: list[tuple[str, str, str]]
    ) -> None:
        """Hands one record per (target, outcome, message) of a batch `call` to the sink."""
        headers = {key: value for key, value in call.metadata if isinstance(value, str)}
        identity = self._identity(headers)
        for target, outcome, message in items:
            self._sink.submit(
                audit_record(
                    source=self._source,
                    rpc=method,
                    outcome=outcome,
                    headers=headers,
                    identity=identity,
                    target=target,
                    message=message,
                )
            )

    def _identity(self, headers: Mapping[str, str]) -> Identity | None:
        token = headers.get(IDENTITY_HEADER)
        if not token:
            return None
        try:
            return self._codec.decode(token)
        except FarmError:
            return None


class _Audited(CallContext):
    """One call's audit: its record made once its final status is known."""

    __slots__ = ("_auditor", "_call", "_method", "_rule")

    def __init__(
        self, auditor: AuditInterceptor, method: str, rule: RpcRule, call: ServerCall
    ) -> None:
        self._auditor = auditor
        self._method = method
        self._rule = rule
        self._call = call

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        call, rule = self._call, self._rule
        if error is not None:
            code = call.context.code()
            if not isinstance(code, grpc.StatusCode):
                code = error.code if isinstance(error, FarmError) else grpc.StatusCode.UNKNOWN
            if rule.mutating or code in DENIALS:
                details = str(call.context.details() or "")
                self._auditor.record(self._method, rule, call, None, code, details)
        elif rule.mutating:  # a read that succeeded is not recorded
            code = call.context.code()
            if not isinstance(code, grpc.StatusCode):
                code = grpc.StatusCode.OK
            per_item = _PER_ITEM.get(self._method)
            if per_item is not None and call.response is not None and call.request is not None:
                items = per_item(call.request, call.response)
                self._auditor.record_items(self._method, call, items)
                return False
            note = _OK_NOTES.get(self._method)
            message = note(call.response) if note and call.response is not None else ""
            self._auditor.record(self._method, rule, call, call.response, code, message)
        return False
