"""The audit log: mutating calls, newest first, filtered by tenant, RPC and outcome (admin)."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farm.audit.v1 import audit_pb2
from farm_console.views import caller, render

PAGE_SIZE = 100
FILTERS = ("tenant", "rpc", "outcome")


async def audit_log(request: Request) -> Response:
    """One page of audit records; the next page by its token."""
    user = caller(request)
    chosen = {name: request.query_params.get(name, "").strip() for name in FILTERS}
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
    return render(request, "audit.html", listing=listing, chosen=chosen)


routes = [Route("/audit", audit_log, methods=["GET"])]
