"""The result cache through Envoy: a repeated screenshot comes back at once, with the same bytes."""

import secrets

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, http_client, new_tenant, png_size
from tests.pages import Site

pytestmark = pytest.mark.e2e


def test_a_repeated_screenshot_is_answered_cached_with_the_same_artifact(
    farm: LocalFarm, admin: Client, make_key: KeyFactory, site: Site
) -> None:
    # A page no other test loads: the first task is sure to run, and the site counts
    # every load of it.
    page = f"cache-{secrets.token_hex(4)}"
    spec = {
        "url": site.url(f"/flaky/{page}?fails=0"),
        "screenshot": {},
        "viewport": {"width": 320, "height": 240},
        "cacheTtlSeconds": 3600,
    }
    first = admin.run({**spec, "labels": {"run": "first"}})
    assert (first["status"], first.get("cached", False)) == ("TASK_STATUS_SUCCEEDED", False)
    assert site.hits[page] == 1

    again = admin.run({**spec, "labels": {"run": "again"}, "priority": "PRIORITY_LOW"})

    assert (again["status"], again["cached"]) == ("TASK_STATUS_SUCCEEDED", True), again
    assert again["id"] != first["id"] and again.get("attempts", 0) == 0
    assert again["result"] == first["result"]
    assert again["spec"]["labels"] == {"run": "again"}
    assert site.hits[page] == 1
    [artifact] = again["result"]["artifacts"]
    shared = admin.artifact_bytes(artifact["id"]).content
    assert shared == admin.artifact_bytes(first["result"]["artifacts"][0]["id"]).content
    assert png_size(shared) == (320, 240)
    assert admin.http.get(f"/v1/artifacts/{artifact['id']}").json()["taskId"] == first["id"]
    assert admin.get(again["id"])["cached"] is True

    stranger = make_key("tasks.write", "tasks.read", tenant=new_tenant("cache"))
    with http_client(farm, stranger.secret) as http:
        theirs = Client(http, stranger.secret).run(spec)
    assert (theirs["status"], theirs.get("cached", False)) == ("TASK_STATUS_SUCCEEDED", False)
    assert theirs["result"]["artifacts"][0]["id"] != artifact["id"]
    assert site.hits[page] == 2


def test_deleting_an_artifact_drops_the_cached_result_that_names_it(
    admin: Client, site: Site
) -> None:
    page = f"cache-del-{secrets.token_hex(4)}"
    spec = {
        "url": site.url(f"/flaky/{page}?fails=0"),
        "screenshot": {},
        "viewport": {"width": 320, "height": 240},
        "cacheTtlSeconds": 3600,
    }
    first = admin.run(spec)
    assert (first["status"], first.get("cached", False)) == ("TASK_STATUS_SUCCEEDED", False)
    [deleted] = first["result"]["artifacts"]
    assert admin.http.delete(f"/v1/artifacts/{deleted['id']}").status_code == 200
    assert admin.http.get(f"/v1/artifacts/{deleted['id']}").status_code == 404

    again = admin.run(spec)

    assert (again["status"], again.get("cached", False)) == ("TASK_STATUS_SUCCEEDED", False)
    assert site.hits[page] == 2
    [artifact] = again["result"]["artifacts"]
    assert artifact["id"] != deleted["id"]
    assert png_size(admin.artifact_bytes(artifact["id"]).content) == (320, 240)
    # The new run's result serves the cache again.
    assert admin.run(spec)["result"] == again["result"]
