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
    try:
        fleet = await _fleet(request)
    except FarmError as refusal:
        if refusal.code != grpc.StatusCode.PERMISSION_DENIED:
            raise
        # Which keys see the fleet is the farm's rule (an admin of the bootstrap
        # tenant): its own words say why this key does not.
        return render(request, "overview.html", me=me, fleet=None, fleet_refused=refusal.message)
    return render(request, "overview.html", me=me, fleet=fleet)


async def fleet_part(request: Request) -> Response:
    """The fleet part alone, for the live refresh."""
    return render(request, "_fleet.html", fleet=await _fleet(request))


async def _fleet(request: Request) -> Json:
    """The fleet status."""
    user = caller(request)
    return await user.farm.call(
        user.key, user.farm.admin.GetFleetStatus, admin_pb2.GetFleetStatusRequest()
    )


routes = [
    Route("/", overview, methods=["GET"]),
    Route("/fleet", fleet_part, methods=["GET"]),
]
