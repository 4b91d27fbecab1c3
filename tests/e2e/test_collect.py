"""Results on request through the whole farm, as a user with curl sees them (HTTP/JSON)."""

import json

import pytest

from tests.e2e.conftest import Client
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

EVERYTHING = {"console": True, "network": True, "har": True, "timing": True, "cookies": True}


def test_a_task_reports_console_network_timing_cookies_and_stores_a_har(
    admin: Client, site: Site
) -> None:
    task = admin.run(
        {"url": site.url("/observed?token=hush-page"), "content": {}, "collect": EVERYTHING}
    )

    assert task["status"] == "TASK_STATUS_SUCCEEDED", task
    result = task["result"]
    console = {(message["level"], message["text"]): message for message in result["console"]}
    assert console[("error", "Uncaught Error: boom")]["source"] == site.url("/observed:11")
    assert ("warning", "a warning from a script") in console
    requests = {request["url"]: request for request in result["network"]}
    assert requests[site.url("/observed")]["resourceType"] == "document"
    assert requests[site.url("/missing.png")]["status"] == 404
    refused = requests["http://169.254.169.254/refused.png"]
    assert refused["status"] == 0, "the guard answered, not the server"
    assert refused["failure"].startswith("refused by the egress guard")
    assert result["timing"]["fcpMs"] > 0
    assert [(c["name"], c["value"]) for c in result["cookies"]] == [("flavour", "oat")]

    [har_artifact] = [a for a in result["artifacts"] if a["kind"] == "ARTIFACT_KIND_HAR"]
    content = admin.artifact_bytes(har_artifact["id"])
    assert content.headers["content-type"] == "application/json"
    assert b"hush-" not in content.content
    entries = json.loads(content.content)["log"]["entries"]
    assert site.url("/observed.js") in {entry["request"]["url"] for entry in entries}
