"""Sessions through the whole farm: commands across calls, clocks, recordings, live view,
profiles and the audit log.

One shared farm (two agents). Listing, placement and the open-sessions quota are in
test_session_listing_and_placement.py; attached clients are in test_session_attach.py; faults
that disturb a farm (a killed agent, a drain) are in test_session_faults.py, with a
farm of their own.
"""

import asyncio
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imageio_ffmpeg
import pytest
from playwright.async_api import Playwright

from farm_agent.browser.chromium import CHROMIUM_FLAGS
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import SESSION_MIN_SECONDS, Client, png_size
from tests.e2e.sessions_api import Sessions, cdp_status, close_reason_of_idle_socket
from tests.helpers import assert_eventually, eventually
from tests.pages import Site

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")


def test_a_form_filled_in_one_command_is_read_in_the_next(sessions: Sessions, site: Site) -> None:
    session = sessions.create()
    try:
        first = sessions.run(
            session["id"],
            url=site.url("/form"),
            steps=[{"fill": {"selector": "#q", "value": "kept across calls"}}],
        )
        assert first["title"] == "Form"
        assert first["finalUrl"] == site.url("/form")
        second = sessions.run(
            session["id"], steps=[{"click": "#go"}], extract={"fields": {"out": "#out"}}
        )
        assert second["json"] == {"out": "You asked: kept across calls"}
        assert sessions.get(session["id"])["commands"] == 2
    finally:
        closed = sessions.close(session["id"])
    assert closed["state"] == "SESSION_STATE_CLOSED"
    assert closed["closeReason"] == "CLOSED_BY_USER"
    assert "cdpUrl" not in closed or not closed["cdpUrl"]


def test_a_commands_screenshot_is_stored_under_the_session(
    sessions: Sessions, admin: Client, site: Site
) -> None:
    session = sessions.create(viewport={"width": 640, "height": 480})
    try:
        result = sessions.run(session["id"], url=site.url("/page"), screenshot={})
    finally:
        sessions.close(session["id"])
    (artifact,) = result["artifacts"]
    assert png_size(admin.artifact_bytes(artifact["id"]).content) == (640, 480)
    listed = admin.http.get("/v1/artifacts", params={"taskId": session["id"]}).json()
    assert [a["id"] for a in listed["artifacts"]] == [artifact["id"]]


# database_neutral: the agent's own behaviour; its session's rows are those of the tests above.
@pytest.mark.database_neutral
def test_a_command_that_cannot_start_within_its_time_fails_and_never_runs(
    sessions: Sessions, site: Site
) -> None:
    # Before, it waited for the earlier command however long, was answered 504 by the
    # scheduler ("did not answer"), and then ran all the same on the page.
    session = sessions.create()
    gate = f"held-{uuid.uuid4().hex}"
    try:
        with ThreadPoolExecutor(1) as pool:
            holding = pool.submit(
                sessions.run, session["id"], url=site.url(f"/gate/{gate}"), timeoutMs=60000
            )
            eventually(
                lambda: gate in site.gates,
                within=30,
                interval=0.1,
                message="the first command never reached its page",
            )
            late = sessions.http.post(
                f"/v1/sessions/{session['id']}:run",
                json={"steps": [{"evaluate": "() => { window.late = true }"}], "timeoutMs": 1000},
            )
            site.release(gate)
            assert holding.result(timeout=60)["title"] == "Gate"
        assert late.status_code == 504, late.text
        assert "TIMEOUT: the command did not start within its 1 s" in late.json()["message"]
        after = sessions.run(session["id"], script={"source": "() => window.late === true"})
        assert after["json"] is False
    finally:
        site.release(gate)
        sessions.close(session["id"])


def test_a_closed_session_refuses_commands_with_failed_precondition(sessions: Sessions) -> None:
    session = sessions.create()
    sessions.close(session["id"])
    response = sessions.http.post(f"/v1/sessions/{session['id']}:run", json={"content": {}})
    assert response.status_code == 400
    assert "closed (CLOSED_BY_USER)" in response.json()["message"]
    # Closing again answers the closed session, unchanged.
    assert sessions.close(session["id"])["closeReason"] == "CLOSED_BY_USER"


# database_neutral: the agent's own behaviour; its session's rows are those of the tests above.
@pytest.mark.database_neutral
def test_a_failing_step_names_its_code_and_selector(sessions: Sessions, site: Site) -> None:
    session = sessions.create()
    try:
        response = sessions.http.post(
            f"/v1/sessions/{session['id']}:run",
            json={"url": site.url("/page"), "steps": [{"click": "#nowhere"}], "timeoutMs": 3000},
        )
    finally:
        sessions.close(session["id"])
    assert response.status_code == 400, response.text
    message = response.json()["message"]
    assert message.startswith("SELECTOR_NOT_FOUND: steps[0].click")


def test_an_unknown_key_is_refused_before_the_session_presses_it(
    sessions: Sessions, site: Site
) -> None:
    session = sessions.create()
    try:
        response = sessions.http.post(
            f"/v1/sessions/{session['id']}:run",
            json={"url": site.url("/form"), "steps": [{"press": "NotAKey"}]},
        )
        # The session goes on: the next command presses a real key.
        assert sessions.run(session["id"], steps=[{"press": "Enter"}])["finalUrl"]
    finally:
        sessions.close(session["id"])
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 3  # INVALID_ARGUMENT
    message = response.json()["message"]
    assert message.startswith("steps[0].press: unknown key 'NotAKey'; a key is")


def test_bad_session_specs_name_the_field(sessions: Sessions) -> None:
    for spec, field in (
        ({"idleTimeoutSeconds": SESSION_MIN_SECONDS - 1}, "idleTimeoutSeconds"),
        ({"maxLifetimeSeconds": 999999}, "maxLifetimeSeconds"),
        ({"viewport": {"width": 0, "height": 10}}, "viewport.width"),
        ({"region": "Not A Region"}, "region"),
        ({"profile": "../etc"}, "profile"),
        ({"device": "Nokia 3310"}, "device"),
    ):
        response = sessions.http.post("/v1/sessions", json=spec)
        assert response.status_code == 400, (spec, response.text)
        assert response.json()["message"].startswith(field), response.text


def test_a_session_closes_itself_when_idle_and_ends_its_sockets_with_a_reason(
    farm: LocalFarm, sessions: Sessions
) -> None:
    # Long enough to attach before it runs out, even on a busy machine.
    session = sessions.create(idleTimeoutSeconds=SESSION_MIN_SECONDS + 1)
    reason = asyncio.run(close_reason_of_idle_socket(session["cdpUrl"], farm.admin_key))
    assert reason == f"session {session['id']} closed: IDLE_TIMEOUT"
    # Asked once, right after the close frame: the agent reported the close before.
    closed = sessions.get(session["id"])
    assert (closed["state"], closed.get("closeReason")) == ("SESSION_STATE_CLOSED", "IDLE_TIMEOUT")


# database_neutral: the agent's own clock; its session's rows are those of the tests above.
@pytest.mark.database_neutral
def test_a_command_running_longer_than_the_idle_timeout_is_not_idleness(
    sessions: Sessions,
) -> None:
    session = sessions.create(idleTimeoutSeconds=SESSION_MIN_SECONDS)
    # Were the command idleness, the session would close within SESSION_CHECK_SECONDS
    # of its idle timeout, well before the wait ends.
    waited = sessions.http.post(
        f"/v1/sessions/{session['id']}:run",
        json={"steps": [{"wait": {"ms": (SESSION_MIN_SECONDS + 1) * 1000}}]},
    )
    assert waited.status_code == 200, waited.text
    assert sessions.get(session["id"])["state"] == "SESSION_STATE_ACTIVE"
    sessions.close(session["id"])


def test_a_session_ends_at_its_maximum_lifetime_however_busy(
    sessions: Sessions, site: Site
) -> None:
    session = sessions.create(maxLifetimeSeconds=SESSION_MIN_SECONDS, idleTimeoutSeconds=60)
    # Room for a slow machine, yet short of the scheduler's backstop (the lifetime plus
    # 60 s): the agent itself must end the session while it is busy.
    deadline = time.monotonic() + 40
    while sessions.get(session["id"])["state"] == "SESSION_STATE_ACTIVE":
        assert time.monotonic() < deadline, "the session outlived its lifetime"
        response = sessions.http.post(f"/v1/sessions/{session['id']}:run", json={})
        # 400 once it closed, or for a command its close cut short (BROWSER_CRASHED).
        assert response.status_code in (200, 400), response.text
        time.sleep(0.5)
    assert sessions.get(session["id"])["closeReason"] == "MAX_LIFETIME"


def test_a_recorded_session_leaves_a_playable_video(
    sessions: Sessions, admin: Client, site: Site, tmp_path: Path
) -> None:
    session = sessions.create(record=True, viewport={"width": 640, "height": 360})
    for path in ("/page", "/box", "/tall"):
        sessions.run(session["id"], url=site.url(path))
    closed = sessions.close(session["id"])
    recording = closed["recording"]
    assert recording["kind"] == "ARTIFACT_KIND_VIDEO"
    assert recording["contentType"] == "video/webm"
    video = tmp_path / "session.webm"
    video.write_bytes(admin.artifact_bytes(recording["id"]).content)
    frame = subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-i",
            str(video),
            "-frames:v",
            "1",
            "-f",
            "image2",
            "-c:v",
            "png",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    assert png_size(frame) == (640, 360)


async def test_the_live_view_shows_the_sessions_screen_in_a_browser(
    sessions: Sessions, site: Site, playwright: Playwright
) -> None:
    session = sessions.create()
    try:
        sessions.run(session["id"], url=site.url("/box"))
        token = sessions.http.post(f"/v1/sessions/{session['id']}:viewToken").json()
        viewer = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = await viewer.new_page()
            await page.goto(token["url"])
            # Polled with evaluate: the view's CSP forbids eval, which wait_for_function uses.
            await assert_eventually(
                lambda: page.evaluate("() => document.getElementById('screen').naturalWidth > 0"),
                within=15,
                message="the live view showed no frame of the session's screen",
            )
            assert await page.text_content("#state") == "live"
            # The token opened the view once; a second use is refused.
            again = await page.request.get(token["url"])
            assert again.status == 401
        finally:
            await viewer.close()
    finally:
        sessions.close(session["id"])


def test_a_profile_carries_cookies_and_local_storage_to_the_next_session(
    sessions: Sessions, site: Site
) -> None:
    profile = f"p-{time.monotonic_ns()}"
    first = sessions.create(profile=profile)
    sessions.run(
        first["id"],
        url=site.url("/page"),
        script={
            "source": "() => { document.cookie = 'who=farmer; max-age=3600'; "
            "localStorage.setItem('kept', 'yes'); }"
        },
    )
    sessions.close(first["id"])
    second = sessions.create(profile=profile)
    try:
        result = sessions.run(
            second["id"],
            url=site.url("/page"),
            script={"source": "() => [document.cookie, localStorage.getItem('kept')]"},
        )
    finally:
        sessions.close(second["id"])
    assert result["json"] == ["who=farmer", "yes"]
    # Without the profile, a session starts clean.
    clean = sessions.create()
    try:
        fresh = sessions.run(
            clean["id"], url=site.url("/page"), script={"source": "() => document.cookie"}
        )
    finally:
        sessions.close(clean["id"])
    assert fresh["json"] == ""


def test_create_attach_and_close_are_in_the_audit_log(
    farm: LocalFarm, sessions: Sessions, admin: Client
) -> None:
    session = sessions.create()
    assert asyncio.run(cdp_status(session["cdpUrl"], farm.admin_key)) == 101
    sessions.close(session["id"])
    deadline = time.monotonic() + 10
    while True:
        records = admin.http.get("/v1/auditRecords", params={"pageSize": 200}).json()
        about = {
            r["rpc"] for r in records.get("auditRecords", []) if r.get("target") == session["id"]
        }
        expected = {
            "/farm.sessions.v1.SessionService/CreateSession",
            f"GET /v1/sessions/{session['id']}/cdp",
            "/farm.sessions.v1.SessionService/CloseSession",
        }
        if expected <= about:
            break
        assert time.monotonic() < deadline, f"audit has {about}"
        time.sleep(0.2)
