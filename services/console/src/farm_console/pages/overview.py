"""The overview: agents with their capacity and health, queues, tasks per state, breakers."""

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farm.admin.v1 import admin_pb2
from farm.auth.v1 import auth_pb2
from farm_console.farm import FarmError, Json
from farm_console.views import caller, render


async def overview(request: Request) -> Response:
    """The whole page; its fleet part refreshes itself."""
    user = caller(request)
    me = await user.farm.call(user.key, user.farm.auth.WhoAmI, auth_pb2.WhoAmIRequest())
    return render(request, "overview.html", me=me, fleet=await _fleet(request))


async def fleet_part(request: Request) -> Response:
    """The fleet part alone, for the live refresh."""
    return render(request, "_fleet.html", fleet=await _fleet(request))


async def _fleet(request: Request) -> Json | None:
    """The fleet status; None for a key without the admin scope."""
    user = caller(request)
    try:
        return await user.farm.call(
            user.key, user.farm.admin.GetFleetStatus, admin_pb2.GetFleetStatusRequest()
        )
    except FarmError as refusal:
        if refusal.code == grpc.StatusCode.PERMISSION_DENIED:
            return None
        raise


routes = [
    Route("/", overview, methods=["GET"]),
    Route("/fleet", fleet_part, methods=["GET"]),
]
