"""What a task's URL hides (a password, a token in its query) stays out of traces and logs.

On the package's traced farm (conftest.py): a task whose page fails names its URL in
its error, which its caller reads whole; the spans the farm exports and the lines it
logs name the URL with its user-info and query values REDACTED.
"""

import secrets
from urllib.parse import urlsplit

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client
from tests.e2e.traced.kept_traces import kept
from tests.helpers import eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral, pytest.mark.slow]


def test_a_failed_tasks_url_secrets_reach_neither_its_trace_nor_the_logs(
    traced_farm: LocalFarm, client: Client, site: Site
) -> None:
    password, token = secrets.token_hex(8), secrets.token_hex(8)
    address = urlsplit(site.url("/")).netloc
    url = f"http://me:{password}@{address}/empty/404?token={token}"
    task = client.run({"url": url, "screenshot": {}, "failOnHttpError": True, "maxAttempts": 1})
    assert task["error"]["code"] == "HTTP_ERROR"
    # The caller's own task names its URL whole.
    assert password in task["error"]["message"] and token in task["error"]["message"]

    trace = kept(traced_farm, task["traceId"], "page.navigate", "browser.run", "task.attempt")
    navigate = trace.one("page.navigate")
    assert navigate.status == "ERROR"
    assert f"http://REDACTED:REDACTED@{address}/empty/404?token=REDACTED" in (
        navigate.statusMessage
    )
    for span in trace.spans:
        text = span.to_json()
        assert password not in text and token not in text, f"{span.name} of {span.service}"

    def failure_logged() -> str | None:
        log = (traced_farm.log_dir / "agent-1.log").read_text(encoding="utf-8")
        return log if f"task {task['id']} failed" in log else None

    eventually(failure_logged, within=20, message="the agent's line of the failure")
    for path in sorted(traced_farm.log_dir.glob("*.log")):
        text = path.read_text(encoding="utf-8", errors="replace")
        assert password not in text and token not in text, path.name


def test_a_refused_requests_event_names_its_host_and_port_not_its_path(
    traced_farm: LocalFarm, client: Client
) -> None:
    # docs/tracing.md: an egress event's `farm.egress.target` is `host:port`, for a
    # plain http request the guard refused as for a tunnel.
    path = f"/latest/{secrets.token_hex(8)}"
    task = client.run({"url": f"http://169.254.169.254{path}", "screenshot": {}, "maxAttempts": 1})
    assert task["error"]["code"] == "BLOCKED_URL"

    trace = kept(traced_farm, task["traceId"], "browser.run", "task.attempt")
    events = trace.one("browser.run").events
    refused = [event.attributes for event in events if event.name == "egress.refused"]
    assert refused == [
        {
            "farm.egress.target": "169.254.169.254:80",
            "farm.egress.address": "169.254.169.254",
            "farm.egress.reason": "metadata",
        }
    ]
    assert not [span.name for span in trace.spans if path in span.to_json()]
