"""Visual comparison through the whole farm over HTTP/JSON: baselines per tenant, approve."""

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, http_client, png_size
from tests.e2e.sessions_api import Sessions
from tests.pages import Site

pytestmark = pytest.mark.e2e

BUY_BOX = {"x": 100, "y": 200, "width": 120, "height": 40}
SCOPES = ("tasks.write", "tasks.read", "artifacts.read")


def shot(site: Site, baseline: str, query: str = "", **page: Any) -> dict[str, Any]:
    """A task spec: screenshot /visual?<query> compared with `baseline`."""
    return {
        "url": site.url(f"/visual?{query}"),
        "screenshot": {"compare": {"baseline": baseline}},
        "maxAttempts": 1,
        **page,
    }


def comparison(client: Client, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs the task; its result and its comparison."""
    task = client.run(spec)
    assert task["status"] == "TASK_STATUS_SUCCEEDED", task.get("error")
    return task["result"], task["result"]["comparison"]


def screenshot_id(result: dict[str, Any]) -> str:
    [artifact] = [a for a in result["artifacts"] if a["kind"] == "ARTIFACT_KIND_SCREENSHOT"]
    return str(artifact["id"])


@pytest.fixture
def baseline() -> str:
    """A baseline name no other test uses."""
    return f"home-{secrets.token_hex(4)}"


@pytest.fixture
def stranger(farm: LocalFarm, make_key: KeyFactory) -> Iterator[Client]:
    """A client of another tenant."""
    key = make_key(*SCOPES, tenant=f"other-{secrets.token_hex(4)}").secret
    with http_client(farm, key) as http:
        yield Client(http, key)


def test_the_same_page_differs_in_nothing_and_a_changed_element_is_boxed_with_a_diff_png(
    admin: Client, site: Site, baseline: str
) -> None:
    _, first = comparison(admin, shot(site, baseline, "button=steelblue"))
    _, same = comparison(admin, shot(site, baseline, "button=steelblue"))
    result, changed = comparison(admin, shot(site, baseline, "button=crimson"))

    assert (first["newBaseline"], first["passed"]) == (True, True)
    assert first["baselineId"].startswith("bsl_")
    assert (same["newBaseline"], same["diffRatio"], same["passed"]) == (False, 0, True)
    assert "changed" not in same and "diff" not in same
    assert changed["passed"] is False
    assert changed["changed"] == BUY_BOX
    assert changed["diffRatio"] == pytest.approx(120 * 40 / (1280 * 800))
    assert changed["diff"]["kind"] == "ARTIFACT_KIND_DIFF"
    diff = admin.artifact_bytes(changed["diff"]["id"])
    assert diff.headers["content-type"] == "image/png"
    assert png_size(diff.content) == (1280, 800)
    assert changed["diff"]["id"] in [a["id"] for a in result["artifacts"]]


def test_approving_a_screenshot_makes_the_next_comparison_pass(
    admin: Client, site: Site, baseline: str
) -> None:
    comparison(admin, shot(site, baseline, "button=steelblue"))
    result, failed = comparison(admin, shot(site, baseline, "button=crimson"))
    assert failed["passed"] is False

    response = admin.http.post(
        f"/v1/baselines/{failed['baselineId']}:approve",
        json={"artifactId": screenshot_id(result)},
    )
    assert response.status_code == 200, response.text
    assert response.json()["artifactId"] == screenshot_id(result)
    _, after = comparison(admin, shot(site, baseline, "button=crimson"))

    assert (after["diffRatio"], after["passed"], after["baselineId"]) == (
        0,
        True,
        failed["baselineId"],
    )
    listed = admin.http.get("/v1/baselines", params={"name": baseline}).json()["baselines"]
    assert [(b["id"], b["url"], b["viewport"]) for b in listed] == [
        (failed["baselineId"], site.url("/visual"), {"width": 1280, "height": 800})
    ]


def test_the_diff_image_is_not_approved_as_the_baseline(
    admin: Client, site: Site, baseline: str
) -> None:
    # The diff is the artifact a failed comparison points at, and a PNG like the screenshot.
    comparison(admin, shot(site, baseline, "button=steelblue"))
    _, failed = comparison(admin, shot(site, baseline, "button=crimson"))

    response = admin.http.post(
        f"/v1/baselines/{failed['baselineId']}:approve",
        json={"artifactId": failed["diff"]["id"]},
    )
    _, again = comparison(admin, shot(site, baseline, "button=crimson"))

    assert response.status_code == 400, response.text
    assert response.json()["code"] == 9  # FAILED_PRECONDITION
    assert response.json()["message"] == (
        f"artifactId: artifact '{failed['diff']['id']}' is an ARTIFACT_KIND_DIFF; a baseline "
        "is a PNG screenshot (ARTIFACT_KIND_SCREENSHOT)"
    )
    assert (again["diffRatio"], again["changed"]) == (failed["diffRatio"], failed["changed"])


def test_a_deleted_baseline_is_made_again_by_the_next_screenshot(
    admin: Client, site: Site, baseline: str
) -> None:
    _, first = comparison(admin, shot(site, baseline, "button=steelblue"))

    response = admin.http.delete(f"/v1/baselines/{first['baselineId']}")
    assert response.status_code == 200, response.text
    _, again = comparison(admin, shot(site, baseline, "button=crimson"))

    assert again["newBaseline"] is True
    assert again["baselineId"] != first["baselineId"]


def test_another_tenant_never_sees_nor_uses_a_baseline(
    admin: Client, stranger: Client, site: Site, baseline: str
) -> None:
    result, ours = comparison(admin, shot(site, baseline, "button=steelblue"))

    _, theirs = comparison(stranger, shot(site, baseline, "button=crimson"))
    approve = stranger.http.post(
        f"/v1/baselines/{ours['baselineId']}:approve", json={"artifactId": screenshot_id(result)}
    )
    delete = stranger.http.delete(f"/v1/baselines/{ours['baselineId']}")
    listed = stranger.http.get("/v1/baselines", params={"name": baseline}).json()["baselines"]

    assert theirs["newBaseline"] is True
    assert theirs["baselineId"] != ours["baselineId"]
    assert (approve.status_code, delete.status_code) == (404, 404)
    assert [b["id"] for b in listed] == [theirs["baselineId"]]
    _, still = comparison(admin, shot(site, baseline, "button=steelblue"))
    assert (still["baselineId"], still["passed"]) == (ours["baselineId"], True)


def test_apps_times_viewports_is_one_batch_of_tasks(
    admin: Client, site: Site, baseline: str
) -> None:
    apps = [site.url("/visual?button=steelblue"), site.url("/box")]
    viewports = [{"width": 1280, "height": 800}, {"width": 390, "height": 844}]
    batch = [
        {**shot(site, baseline), "url": url, "viewport": viewport, "labels": {"run": baseline}}
        for url in apps
        for viewport in viewports
    ]

    first = [admin.wait(admin.create(spec)["id"]) for spec in batch]
    second = [admin.wait(admin.create(spec)["id"]) for spec in batch]

    made = [task["result"]["comparison"] for task in first]
    compared = [task["result"]["comparison"] for task in second]
    assert all(c["newBaseline"] for c in made)
    assert len({c["baselineId"] for c in made}) == 4
    assert all(c["passed"] and not c["newBaseline"] for c in compared)


def test_a_session_command_compares_its_screenshot_too(
    admin: Client, site: Site, baseline: str
) -> None:
    sessions = Sessions(admin.http)
    session = sessions.create()
    try:
        compare = {"screenshot": {"compare": {"baseline": baseline}}}
        first = sessions.run(session["id"], url=site.url("/visual?button=steelblue"), **compare)
        changed = sessions.run(session["id"], url=site.url("/visual?button=crimson"), **compare)
    finally:
        sessions.close(session["id"])

    assert first["comparison"]["newBaseline"] is True
    assert changed["comparison"]["changed"] == BUY_BOX
    diff = admin.http.get(f"/v1/artifacts/{changed['comparison']['diff']['id']}").json()
    assert (diff["taskId"], diff["name"]) == (session["id"], "command-2-diff")
