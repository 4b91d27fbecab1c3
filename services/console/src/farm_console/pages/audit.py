"""The audit log: mutating calls, newest first, filtered by tenant, RPC and outcome (admin)."""

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farm.audit.v1 import audit_pb2
from farm_console.farm import FarmError, Json
from farm_console.forms import Refusal, form_status, refusal
from farm_console.views import caller, render

PAGE_SIZE = 100
FILTERS = ("tenant", "rpc", "outcome")
FILTER_FIELDS = {name: name for name in FILTERS}


async def audit_log(request: Request) -> Response:
    """One page of audit records; the next page by its token.

    A filter the farm refuses (an unknown outcome, another tenant for a tenant's admin)
    is shown at its field of the filter form, kept as typed, with no records.
    """
    user = caller(request)
    chosen = {name: request.query_params.get(name, "").strip() for name in FILTERS}
    listing: Json = {}
    filter_error: Refusal | None = None
    status_code = 200
    try:
        listing = await user.farm.call(
            user.key,
            user.farm.audit.ListAuditRecords,
            audit_pb2.ListAuditRecordsRequest(
                tenant=chosen["tenant"],
                rpc=chosen["rpc"],
                outcome=chosen["outcome"],
                page_size=PAGE_SIZE,
                page_token=request.query_params.get("pageToken", ""),
            ),
        )
    except FarmError as refused:
        filter_error = refusal(refused.message, FILTER_FIELDS)
        # A key without the admin scope is refused the page, as every page refuses it.
        named_filter = refused.code == grpc.StatusCode.PERMISSION_DENIED and filter_error.field
        if refused.code != grpc.StatusCode.INVALID_ARGUMENT and not named_filter:
            raise
        status_code = form_status(refused)
    return render(
        request,
        "audit.html",
        status_code,
        listing=listing,
        chosen=chosen,
        filter_error=filter_error,
    )


routes = [Route("/audit", audit_log, methods=["GET"])]
