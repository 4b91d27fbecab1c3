"""A session's browser asks for nothing of its own: every request it makes is its page's.

On the package's traced farm (conftest.py): each egress decision for a session's
listener is an event of the session's span of the moment (docs/tracing.md), so the
spans of a session's commands name every host its browser reached for meanwhile.
"""

from urllib.parse import urlsplit

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client
from tests.e2e.traced.kept_traces import kept
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral, pytest.mark.slow]

EGRESS_EVENTS = ("egress.allowed", "egress.refused", "egress.failed")
# What Chromium 156 still asks for with every switch it has set (docs/security.md): a
# fresh profile's Google account list (retried with backoff while it fails) and the
# on-device model manifest's update check, both at the browser's start, with no cookie
# and nothing of the page.
NO_SWITCH_STOPS = frozenset(
    {"accounts.google.com:443", "update.googleapis.com:443", "update.googleapis.com:80"}
)


def test_a_session_browser_filling_a_form_reaches_only_the_pages_host(
    traced_farm: LocalFarm, client: Client, site: Site
) -> None:
    # A full Chromium asks Google's autofill server (content-autofill.googleapis.com)
    # about each form it sees, and fetches field trials, network time and more at its
    # start, unless its switches say not to (farm_agent/browser/chromium.py).
    http = client.http
    session = http.post("/v1/sessions", json={}).json()
    page = site.url("/address-form")
    fills = [
        {"fill": {"selector": f"#{field}", "value": value}}
        for field, value in (("name", "Ann Smith"), ("email", "ann@example.com"))
    ]
    more = [
        {"click": "#street"},
        {"fill": {"selector": "#street", "value": "1 Main Street"}},
        {"fill": {"selector": "#zip", "value": "12345"}},
        {"click": "#send"},
    ]
    try:
        for command in ({"url": page, "steps": fills}, {"steps": more}, {"url": page}):
            ran = http.post(f"/v1/sessions/{session['id']}:run", json=command)
            assert ran.status_code == 200, ran.text
    finally:
        assert http.post(f"/v1/sessions/{session['id']}:close").status_code == 200

    trace = kept(traced_farm, session["traceId"], "session.open", "session.close")
    commands = trace.named("session.command")
    assert len(commands) == 3
    reached = {
        event.attributes["farm.egress.target"]
        for span in [trace.one("session.open", "farm-agent"), *commands]
        for event in span.events
        if event.name in EGRESS_EVENTS
    }
    own = urlsplit(page).netloc
    # The page was reached through the session's listener, so its events are recorded.
    assert own in reached
    others = reached - {own} - NO_SWITCH_STOPS
    assert not others, f"the session's browser reached for {others} on its own"
