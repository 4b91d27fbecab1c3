"""Tasks: the list (filtered by state and label), the submit form, a task's detail, artifacts."""

import re
from typing import Any

import grpc
from google.protobuf import json_format
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farm.tasks.v1 import tasks_pb2
from farm_console import capture_form
from farm_console.farm import FarmError, Json
from farm_console.forms import (
    INT32_MAX,
    FormError,
    Refusal,
    entered,
    form_status,
    refusal,
    whole_number,
)
from farm_console.once import FormTokens
from farm_console.security import artifact_headers
from farm_console.views import caller, go_to, page_size, render
from farm_core import idempotency

PAGE_SIZE = 50
STATUSES = ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
ACTIONS = ["screenshot", "pdf", "content"]
PRIORITIES = ["HIGH", "NORMAL", "LOW"]
FINAL_STATUSES = {f"TASK_STATUS_{name}" for name in ("SUCCEEDED", "FAILED", "CANCELLED")}
# The form field a refusal's field (as the farm names it) is shown at.
FORM_FIELDS = {
    "url": "url",
    "action": "action",
    "priority": "priority",
    "labels": "label",
    "maxAttempts": "maxAttempts",
    "timeoutMs": "timeoutMs",
    "screenshot.selector": "selector",
    "screenshot.fullPage": "fullPage",
    **capture_form.FORM_FIELDS,
}
# The filter form's field a refusal of the list's filter is shown at.
FILTER_FIELDS = {"status": "status", "label": "label"}
SUBMIT_FORMS = FormTokens("create-task")
"""The submit form's one-time tokens: the same form sent twice makes one task."""
# The task named by CreateTask's refusal of a used idempotency key (farm_core.idempotency).
PARSED_AT = re.compile(r" at TaskSpec\.([\w.]+?)\.*$")
USED_BY_TASK = re.compile(r"was used by task (\S+) with a different spec")


def chosen_status(request: Request) -> str:
    """The list's `?status=` as one of STATUSES ("" for any), written in any case.

    TASK_STATUS_QUEUED is taken too; an unknown state is refused as the farm refuses a
    bad filter, not ignored (which would list every task).
    """
    asked = request.query_params.get("status", "").strip()
    name = asked.upper().removeprefix("TASK_STATUS_")
    if name and name not in STATUSES:
        raise FarmError(
            grpc.StatusCode.INVALID_ARGUMENT, f"status: one of {', '.join(STATUSES)}, not {asked!r}"
        )
    return name


def _list_request(request: Request) -> tasks_pb2.ListTasksRequest:
    label = request.query_params.get("label", "").strip()
    chosen = chosen_status(request) or "UNSPECIFIED"
    return tasks_pb2.ListTasksRequest(
        status=tasks_pb2.TaskStatus.Value(f"TASK_STATUS_{chosen}"),
        page_size=page_size(request, PAGE_SIZE),
        page_token=request.query_params.get("pageToken", ""),
        label=[label] if label else [],
    )


async def _tasks(request: Request) -> Json:
    user = caller(request)
    return await user.farm.call(user.key, user.farm.tasks.ListTasks, _list_request(request))


async def task_list(
    request: Request,
    form_error: Refusal | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The task list with its filter and the submit form (filled in again after a refusal).

    A filter the farm refuses (an unknown state, a label not key=value) is shown at its
    field of the filter form, kept as typed, with no rows: the page stays usable.
    """
    filter_error = None
    try:
        listing = await _tasks(request)
    except FarmError as refused:
        if refused.code != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        listing, filter_error = {}, refusal(refused.message, FILTER_FIELDS)
        status_code = form_status(refused)
    name = request.query_params.get("status", "").strip().upper().removeprefix("TASK_STATUS_")
    return render(
        request,
        "tasks.html",
        status_code,
        listing=listing,
        statuses=STATUSES,
        actions=ACTIONS,
        priorities=PRIORITIES,
        chosen={**request.query_params, "status": name},
        filter_error=filter_error,
        form_error=form_error,
        form=form or {},
        form_token=SUBMIT_FORMS.make(caller(request).key),
    )


async def task_rows(request: Request) -> Response:
    """The list's rows alone, for the live refresh."""
    return render(request, "_task_rows.html", listing=await _tasks(request))


def chosen_priority(form: FormData) -> str:
    """The form's priority as one of PRIORITIES, written in any case; FormError for another.

    The drop-down sends only these; a hand-made POST's other value is refused at the
    field, not left to the proto parser's message (or, for UNSPECIFIED, to the default).
    """
    asked = str(form.get("priority", "NORMAL")).strip()
    name = asked.upper().removeprefix("PRIORITY_")
    if name not in PRIORITIES:
        raise FormError("priority", f"must be one of {', '.join(PRIORITIES)}, got {asked!r}")
    return name


def parse_spec(spec: dict[str, Any]) -> tasks_pb2.TaskSpec:
    """`spec` as a TaskSpec; a value of the wrong type is a FormError at the field it is in."""
    try:
        return json_format.ParseDict(spec, tasks_pb2.TaskSpec())
    except json_format.ParseError as error:
        # The parser ends its message with where: "... at TaskSpec.screenshot.fullPage."
        where = PARSED_AT.search(str(error))
        raise FormError(where.group(1) if where else "spec", str(error)) from error


def spec_from_form(form: FormData) -> dict[str, Any]:
    """A TaskSpec (proto3 JSON) from the submit form; the farm validates it."""
    action = str(form.get("action", "screenshot"))
    if action not in ACTIONS:
        # The drop-down sends only these; a hand-made POST is refused, not taken as a screenshot.
        raise FormError("action", f"must be one of {', '.join(ACTIONS)}, got {action!r}")
    options: dict[str, Any] = {}
    selector = str(form.get("selector", "")).strip()
    if action != "screenshot":
        # As the CLI's `--selector only goes with --screenshot`: refused, not dropped.
        if selector:
            raise FormError(
                "screenshot.selector", f"Element only goes with screenshot, not with {action}"
            )
        if form.get("fullPage"):
            raise FormError(
                "screenshot.fullPage", f"full page only goes with screenshot, not with {action}"
            )
    if form.get("fullPage"):
        options["fullPage"] = True
    if selector:
        options["selector"] = selector
    options.update(capture_form.capture_options(form, action))
    spec: dict[str, Any] = {
        "url": str(form.get("url", "")).strip(),
        action: options,
        "priority": f"PRIORITY_{chosen_priority(form)}",
    }
    label = str(form.get("label", "")).strip()
    if label:
        name, equals, value = label.partition("=")
        if not equals:
            # As the list's filter and `farm --label` take it: "job" alone is no label.
            raise FormError("labels", f"must be written key=value, got {label!r}")
        spec["labels"] = {name.strip(): value.strip()}
    for field in ("maxAttempts", "timeoutMs"):
        number = whole_number(str(form.get(field, "")), field, INT32_MAX)
        if number is not None:
            spec[field] = number
    return spec


def _form_used_before(refused: FarmError) -> Refusal | None:
    """The refusal to show when CreateTask refused the form's nonce: it made a task already.

    Only a form changed after it was submitted (back, edit, submit) gets here: the same
    form again is answered with its first task.
    """
    if refused.code != grpc.StatusCode.INVALID_ARGUMENT:
        return None
    if not refused.message.startswith(f"{idempotency.FIELD}:"):
        return None
    used_by = USED_BY_TASK.search(refused.message)
    task = f"task {used_by.group(1)}" if used_by else "a task"
    return Refusal(
        "",
        f"This form already submitted {task}, and was changed since: "
        "submit it again to create another task with what it holds now.",
    )


async def submit_task(request: Request) -> Response:
    """CreateTask from the form; on to the new task's page, or the form with the refusal.

    The form's one-time token's nonce is the task's idempotency key, so the same form
    sent again (a double click, a browser's resend), on any replica, makes no second
    task: the farm answers with the first, and its page opens.
    """
    user = caller(request)
    form = await request.form()
    nonce = SUBMIT_FORMS.nonce(user.key, str(form.get("formToken", "")))
    try:
        spec = parse_spec(spec_from_form(form))
        if nonce is None:
            raise FormError("formToken", "the form is out of date: submit it again")
        spec.idempotency_key = nonce
        task = await user.farm.call(
            user.key, user.farm.tasks.CreateTask, tasks_pb2.CreateTaskRequest(spec=spec)
        )
    except (FormError, FarmError) as refused:
        used_before = _form_used_before(refused) if isinstance(refused, FarmError) else None
        if used_before is not None:
            return await task_list(request, used_before, entered(form), status_code=409)
        message = refused.message if isinstance(refused, FarmError) else str(refused)
        return await task_list(
            request, refusal(message, FORM_FIELDS), entered(form), status_code=form_status(refused)
        )
    return go_to(request, f"/tasks/{task['id']}")


async def _task(request: Request) -> Json:
    user = caller(request)
    task_id = request.path_params["task_id"]
    return await user.farm.call(
        user.key, user.farm.tasks.GetTask, tasks_pb2.GetTaskRequest(id=task_id)
    )


def _task_context(request: Request, task: Json) -> dict[str, Any]:
    trace_url = caller(request).settings.trace_url
    trace_id = task.get("traceId", "")
    return {
        "task": task,
        "final": task.get("status") in FINAL_STATUSES,
        # Not str.format: a link's own braces (Grafana's JSON in its query) are no fields.
        "trace_link": trace_url.replace("{trace_id}", trace_id) if trace_url and trace_id else "",
    }


async def task_detail(request: Request) -> Response:
    """A task: its state, attempts, error and artifacts (images shown inline)."""
    task = await _task(request)
    return render(request, "task.html", **_task_context(request, task))


async def task_part(request: Request) -> Response:
    """A task's live part alone, refreshed until the task is final."""
    task = await _task(request)
    return render(request, "_task.html", **_task_context(request, task))


async def cancel_task(request: Request) -> Response:
    """CancelTask."""
    user = caller(request)
    task_id = request.path_params["task_id"]
    await user.farm.call(
        user.key, user.farm.tasks.CancelTask, tasks_pb2.CancelTaskRequest(id=task_id)
    )
    return go_to(request, f"/tasks/{task_id}")


async def artifact(request: Request) -> Response:
    """An artifact's bytes with their content type, sandboxed so that nothing in it runs."""
    user = caller(request)
    body = await user.farm.artifact_content(user.key, request.path_params["artifact_id"])
    content_type = body.content_type or "application/octet-stream"
    return Response(body.data, media_type=content_type, headers=artifact_headers(content_type))


routes = [
    Route("/tasks", task_list, methods=["GET"]),
    Route("/tasks", submit_task, methods=["POST"]),
    Route("/tasks/rows", task_rows, methods=["GET"]),
    Route("/tasks/{task_id}", task_detail, methods=["GET"]),
    Route("/tasks/{task_id}/part", task_part, methods=["GET"]),
    Route("/tasks/{task_id}/cancel", cancel_task, methods=["POST"]),
    Route("/artifacts/{artifact_id}", artifact, methods=["GET"]),
]
