"""AuditService (reading the audit log) and the audit of refusals at the edge."""

import datetime as dt
from typing import Any

from google.rpc import code_pb2  # type: ignore[import-untyped]

from farm.audit.v1 import audit_pb2, audit_pb2_grpc
from farm_auth.audit_log import AuditFilter, AuditLog, record_cursor
from farm_auth.authz import Authorizer, EdgeRequest, Verdict
from farm_core.audit import AuditSink, audit_record
from farm_core.audit_outcomes import audit_outcome, unknown_outcome_message
from farm_core.errors import InvalidArgument
from farm_core.identity import Identity, current_identity, require_operator
from farm_core.paging import read_page

EDGE_SOURCE = "edge"
# The headers a refusal at the edge is recorded with (the trace id comes from them).
TRACE_HEADERS = ("traceparent", "x-request-id")


class AuditApi(audit_pb2_grpc.AuditServiceServicer):
    """farm.audit.v1.AuditService: an admin reads its tenant's records; the operator all."""

    def __init__(self, audit_log: AuditLog, bootstrap_tenant: str) -> None:
        self._log = audit_log
        self._bootstrap_tenant = bootstrap_tenant

    async def ListAuditRecords(
        self, request: audit_pb2.ListAuditRecordsRequest, context: Any
    ) -> audit_pb2.ListAuditRecordsResponse:
        caller = current_identity()
        if request.tenant and request.tenant != caller.tenant:
            require_operator(
                caller,
                f"read the audit records of another tenant than {caller.tenant!r}",
                self._bootstrap_tenant,
                field="tenant",
            )
        # A status name in any case ("permission_denied"), for every caller alike.
        outcome = audit_outcome(request.outcome)
        if outcome is None:
            raise InvalidArgument("outcome", unknown_outcome_message(request.outcome))
        where = AuditFilter(
            tenant=request.tenant or (None if caller.operator else caller.tenant),
            rpc=request.rpc,
            outcome=outcome,
            since=request.since.ToDatetime(dt.UTC) if request.HasField("since") else None,
        )
        page, next_token = await read_page(
            request,
            lambda limit, after: self._log.list(where, after, limit),
            record_cursor,
        )
        return audit_pb2.ListAuditRecordsResponse(audit_records=page, next_page_token=next_token)


class AuditedAuthorizer(Authorizer):
    """The edge's check, recording each refusal, and each attach to a session, to the audit log."""

    def __init__(self, *args: Any, audit: AuditSink, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._audit = audit

    async def check(self, request: EdgeRequest) -> Verdict:
        verdict = await super().check(request)
        if not verdict.allowed:
            self._audit.submit(edge_refusal(request, verdict))
        elif (
            verdict.agent
            and verdict.identity is not None
            and verdict.session is not None
            and verdict.session.attach
        ):
            # Let through to a session's browser: who attached is worth a record.
            self._audit.submit(
                session_attach(request, verdict.identity, verdict.session.session_id)
            )
        return verdict


def edge_refusal(request: EdgeRequest, verdict: Verdict) -> audit_pb2.AuditRecord:
    """The audit record of a call Envoy refused because of its key (or its rate)."""
    path = request.path.partition("?")[0]
    headers = {name: request.header(name) or "" for name in TRACE_HEADERS}
    return audit_record(
        source=EDGE_SOURCE,
        rpc=path if request.grpc_caller else f"{request.method} {path}",
        outcome=str(code_pb2.Code.Name(verdict.code)),
        headers=headers,
        message=verdict.message,
    )


def session_attach(
    request: EdgeRequest, identity: Identity, session_id: str
) -> audit_pb2.AuditRecord:
    """The audit record of a caller let through to session `session_id`'s browser."""
    path = request.path.partition("?")[0]
    headers = {name: request.header(name) or "" for name in TRACE_HEADERS}
    return audit_record(
        source=EDGE_SOURCE,
        rpc=f"{request.method} {path}",
        outcome=str(code_pb2.Code.Name(code_pb2.OK)),
        headers=headers,
        identity=identity,
        target=session_id,
    )
