"""A user with curl: tasks and artifacts over HTTP/JSON through Envoy."""

import json
import re
from typing import Any

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, agent_metric, png_size, unique_label
from tests.helpers import eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]


def test_screenshot_is_a_png_the_size_of_the_viewport(admin: Client, site: Site) -> None:
    task = admin.run(
        {"url": site.url("/page"), "screenshot": {}, "viewport": {"width": 640, "height": 480}}
    )

    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    [artifact] = task["result"]["artifacts"]
    assert artifact["kind"] == "ARTIFACT_KIND_SCREENSHOT"
    content = admin.artifact_bytes(artifact["id"])
    assert content.headers["content-type"] == "image/png"
    assert png_size(content.content) == (640, 480)
    assert int(artifact["sizeBytes"]) == len(content.content)


def test_full_page_screenshot_of_a_tall_page_is_taller_than_the_viewport(
    admin: Client, site: Site
) -> None:
    viewport = {"width": 800, "height": 600}
    task = admin.run(
        {"url": site.url("/tall"), "screenshot": {"fullPage": True}, "viewport": viewport}
    )

    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    width, height = png_size(admin.artifact_bytes(task["result"]["artifacts"][0]["id"]).content)
    assert width == 800
    assert height > 3000


def test_pdf_is_a_pdf(admin: Client, site: Site) -> None:
    task = admin.run({"url": site.url("/page"), "pdf": {"paperFormat": "A4"}})

    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    [artifact] = task["result"]["artifacts"]
    content = admin.artifact_bytes(artifact["id"])
    assert content.headers["content-type"] == "application/pdf"
    assert content.content.startswith(b"%PDF")


def test_pdf_and_screenshot_options_arrive_by_their_json_names(admin: Client, site: Site) -> None:
    printed = admin.run(
        {
            "url": site.url("/three-pages"),
            "pdf": {
                "margin": {"top": "1in", "left": "2cm"},
                "pageRanges": "2-3",
                "preferCssPageSize": True,
                "scale": 0.9,
            },
        }
    )
    assert printed["status"] == "TASK_STATUS_SUCCEEDED", printed
    document = admin.artifact_bytes(printed["result"]["artifacts"][0]["id"]).content
    assert len(re.findall(rb"/Type\s*/Page\b", document)) == 2

    shot = admin.run(
        {
            "url": site.url("/colour-boxes"),
            "screenshot": {
                "omitBackground": True,
                "clip": {"x": 50, "y": 10, "width": 120, "height": 50},
            },
        }
    )
    assert shot["status"] == "TASK_STATUS_SUCCEEDED", shot
    image = admin.artifact_bytes(shot["result"]["artifacts"][0]["id"]).content
    assert png_size(image) == (120, 50)


def test_content_returns_the_pages_text(admin: Client, site: Site) -> None:
    task = admin.run({"url": site.url("/page"), "content": {"format": "CONTENT_FORMAT_TEXT"}})

    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    assert "Hello, farm" in task["result"]["text"]
    assert "<h1>" not in task["result"]["text"]
    assert task["result"]["title"] == "Test page"
    assert task["result"]["httpStatus"] == 200


def test_run_task_returns_a_finished_task_with_its_timeline(admin: Client, site: Site) -> None:
    task = admin.run({"url": site.url("/page"), "content": {}})

    assert task["status"] == "TASK_STATUS_SUCCEEDED"
    assert task["attempts"] == 1
    assert task["agentId"].startswith("agent-")
    assert task["createTime"] <= task["startTime"] <= task["finishTime"]
    assert "<h1>Hello, farm</h1>" in task["result"]["text"]


def test_create_poll_and_download_as_the_readme_shows(admin: Client, site: Site) -> None:
    created = admin.create(
        {"url": site.url("/page"), "screenshot": {"format": "IMAGE_FORMAT_JPEG"}}
    )
    assert created["status"] == "TASK_STATUS_QUEUED"

    task = admin.wait(created["id"])

    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    content = admin.artifact_bytes(task["result"]["artifacts"][0]["id"])
    assert content.headers["content-type"] == "image/jpeg"
    assert content.content[:3] == b"\xff\xd8\xff"


def test_artifacts_of_a_task_are_listed_and_can_be_deleted(admin: Client, site: Site) -> None:
    task = admin.run({"url": site.url("/page"), "screenshot": {}})
    listed = admin.http.get("/v1/artifacts", params={"taskId": task["id"]}).json()
    [artifact] = listed["artifacts"]
    assert artifact["taskId"] == task["id"]

    assert admin.http.delete(f"/v1/artifacts/{artifact['id']}").status_code == 200

    assert admin.http.get(f"/v1/artifacts/{artifact['id']}").status_code == 404


def test_list_pages_through_every_task_once(admin: Client, site: Site) -> None:
    label = unique_label()
    created = {
        admin.create({"url": site.url("/page"), "content": {}, "labels": label})["id"]
        for _ in range(5)
    }

    seen: list[str] = []
    token = ""
    for _ in range(10):
        params: dict[str, str | int] = {
            "pageSize": 2,
            "label": f"test={label['test']}",
            "pageToken": token,
        }
        page = admin.http.get("/v1/tasks", params=params).json()
        assert len(page["tasks"]) <= 2
        seen += [task["id"] for task in page["tasks"]]
        token = page["nextPageToken"]
        if not token:
            break

    assert sorted(seen) == sorted(created)


def cancel(admin: Client, task_id: str) -> dict[str, Any]:
    """CancelTask over HTTP: the task as it stands after the cancel."""
    response = admin.http.post(f"/v1/tasks/{task_id}:cancel")
    assert response.status_code == 200, response.text
    return dict(response.json())


def agents_cancelled(farm: LocalFarm) -> float:
    """Attempts the agents ended as cancelled (a running one stopped, or a queued one skipped)."""
    return agent_metric(farm, "agent_tasks_total", status="cancelled")


def test_cancel_of_a_queued_task_means_no_agent_runs_it(
    farm: LocalFarm, admin: Client, site: Site, busy_agents: str
) -> None:
    # Every agent slot is held, so the task waits in the queue of a region agents serve.
    page = f"cancelled-{unique_label()['test']}"
    task = admin.create({"url": site.url(f"/flaky/{page}?fails=0"), "content": {}})
    skipped = agents_cancelled(farm)

    cancelled = cancel(admin, task["id"])
    # Queued behind it: once this one ran, the agents have gone past the cancelled task.
    behind = admin.create({"url": site.url(f"/flaky/{page}-behind?fails=0"), "content": {}})
    site.release(busy_agents)
    assert admin.wait(behind["id"])["status"] == "TASK_STATUS_SUCCEEDED"

    assert cancelled["status"] == "TASK_STATUS_CANCELLED"
    final = admin.get(task["id"])
    assert (final["status"], final.get("attempts", 0)) == ("TASK_STATUS_CANCELLED", 0)
    assert site.hits.get(page, 0) == 0
    # The cancel deleted its message from the queue: no agent even met it.
    assert agents_cancelled(farm) == skipped


def test_cancel_of_a_running_task_stops_it(farm: LocalFarm, admin: Client, site: Site) -> None:
    gate = f"cancel-{unique_label()['test']}"
    task = admin.create({"url": site.url(f"/gate/{gate}"), "screenshot": {}, "timeoutMs": 60000})
    admin.wait_for_status(task["id"], "TASK_STATUS_RUNNING")
    stopped = agents_cancelled(farm)

    cancelled = cancel(admin, task["id"])
    try:
        # The gate still holds the page open: only the cancel can end the attempt now.
        eventually(
            lambda: agents_cancelled(farm) > stopped,
            within=15,
            interval=0.2,
            message="the agent did not stop the cancelled task",
        )
    finally:
        site.release(gate)

    assert cancelled["status"] == "TASK_STATUS_CANCELLED"
    final = admin.get(task["id"])
    assert final["status"] == "TASK_STATUS_CANCELLED"
    assert "result" not in final
    assert admin.http.get("/v1/artifacts", params={"taskId": task["id"]}).json()["artifacts"] == []


def test_watch_streams_events_until_the_final_state(admin: Client, site: Site) -> None:
    gate = f"watch-{unique_label()['test']}"
    task = admin.create({"url": site.url(f"/gate/{gate}"), "content": {}})

    statuses = []
    with admin.http.stream("GET", f"/v1/tasks/{task['id']}:watch") as stream:
        for line in stream.iter_lines():
            if not line.strip():
                continue
            event = json.loads(line)
            statuses.append(event["status"])
            if event["status"] == "TASK_STATUS_RUNNING":
                site.release(gate)

    assert statuses[-1] == "TASK_STATUS_SUCCEEDED"
    assert "TASK_STATUS_RUNNING" in statuses
    assert statuses.count("TASK_STATUS_SUCCEEDED") == 1


def test_warm_tasks_of_a_tenant_reuse_a_context_and_report_their_own_page(
    farm: LocalFarm, admin: Client, site: Site
) -> None:
    """Three warm tasks on at most two agents: at least one runs in a reused context."""
    reused = agent_metric(farm, "agent_warm_context_uses_total", outcome="reused")
    for path, title in (("/page", "Test page"), ("/echo", "Echo"), ("/page", "Test page")):
        task = admin.run({"url": site.url(path), "content": {}, "isolation": "ISOLATION_WARM"})
        assert task["status"] == "TASK_STATUS_SUCCEEDED", task
        assert task["spec"]["isolation"] == "ISOLATION_WARM"
        assert task["result"]["title"] == title
    assert farm.config.agents <= 2
    assert agent_metric(farm, "agent_warm_context_uses_total", outcome="reused") >= reused + 1
