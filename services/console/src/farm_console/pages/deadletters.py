"""Dead letters: tasks that ran out of attempts, each with a requeue button (admin scope)."""

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farm.admin.v1 import admin_pb2
from farm_console.views import caller, go_to, page_size, render

PAGE_SIZE = 100
TASK_ID = re.compile(r"[0-9a-f]{32}")
"""The form of a task id: a `requeued` parameter of any other form is no task of ours."""


async def dead_letters(request: Request) -> Response:
    """One page of dead letters, newest first; the next page by its token."""
    user = caller(request)
    listing = await user.farm.call(
        user.key,
        user.farm.admin.ListDeadLetters,
        admin_pb2.ListDeadLettersRequest(
            page_size=page_size(request, PAGE_SIZE),
            page_token=request.query_params.get("pageToken", ""),
        ),
    )
    requeued = request.query_params.get("requeued", "")
    if not TASK_ID.fullmatch(requeued):
        # Only the requeue's own redirect says a task was requeued: a link cannot.
        requeued = ""
    return render(request, "deadletters.html", listing=listing, requeued=requeued)


async def requeue(request: Request) -> Response:
    """RequeueDeadLetter; back to the list, naming the task requeued."""
    user = caller(request)
    task_id = request.path_params["task_id"]
    await user.farm.call(
        user.key,
        user.farm.admin.RequeueDeadLetter,
        admin_pb2.RequeueDeadLetterRequest(task_id=task_id),
    )
    return go_to(request, f"/deadletters?requeued={task_id}")


routes = [
    Route("/deadletters", dead_letters, methods=["GET"]),
    Route("/deadletters/{task_id}/requeue", requeue, methods=["POST"]),
]
