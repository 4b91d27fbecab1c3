"""Dead letters: tasks that ran out of attempts, each with a requeue button (admin scope)."""

import re
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farm.admin.v1 import admin_pb2
from farm.tasks.v1 import tasks_pb2
from farm_console.farm import FarmError
from farm_console.views import caller, go_to, may_open, page_size, render

PAGE_SIZE = 100
SEARCH_PAGE_SIZE = 1000
"""ListDeadLetters' largest page: a dead letter's own page looks for it page by page."""
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
    elsewhere = await _why_no_task_page(request, requeued) if requeued else ""
    return render(
        request, "deadletters.html", listing=listing, requeued=requeued, elsewhere=elsewhere
    )


async def _why_no_task_page(request: Request, task_id: str) -> str:
    """Why the Task page of `task_id` would not open for the caller; "" when it would.

    An operator requeues any tenant's dead letter, but the Task page shows only the
    caller's tenant's tasks (GetTask): the notice links to it only when it opens.
    """
    if not may_open(request, "tasks.read"):
        return "this key may not read tasks (no tasks.read scope)"
    user = caller(request)
    try:
        await user.farm.call(
            user.key, user.farm.tasks.GetTask, tasks_pb2.GetTaskRequest(id=task_id)
        )
    except FarmError as error:
        if error.code is grpc.StatusCode.NOT_FOUND:
            return (
                "it is another tenant's task, which only that tenant's keys see; "
                "should it fail for good again, it is back in this list"
            )
        if error.code is grpc.StatusCode.PERMISSION_DENIED:
            return "this key may not read tasks (no tasks.read scope)"
        raise
    return ""


async def _find(request: Request, task_id: str) -> dict[str, Any]:
    """The caller's dead letter of `task_id`, as ListDeadLetters shows it; else NOT_FOUND.

    There is no GetDeadLetter: the list (every tenant's for an operator, the
    caller's own tenant's for any other admin) is the only view of another
    tenant's failed task that an operator has; GetTask is the caller's tenant's.
    """
    user = caller(request)
    token = ""
    while True:
        listing = await user.farm.call(
            user.key,
            user.farm.admin.ListDeadLetters,
            admin_pb2.ListDeadLettersRequest(page_size=SEARCH_PAGE_SIZE, page_token=token),
        )
        for letter in listing.get("deadLetters", []):
            if letter["task"]["id"] == task_id:
                return dict(letter)
        token = listing.get("nextPageToken", "")
        if not token:
            raise FarmError(grpc.StatusCode.NOT_FOUND, f"dead letter {task_id} not found")


async def dead_letter(request: Request) -> Response:
    """One dead letter: its task (any tenant's, for an operator) and a requeue button."""
    letter = await _find(request, request.path_params["task_id"])
    return render(request, "deadletter.html", letter=letter, task=letter["task"], final=True)


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
    Route("/deadletters/{task_id}", dead_letter, methods=["GET"]),
    Route("/deadletters/{task_id}/requeue", requeue, methods=["POST"]),
]
