"""Sessions through the whole farm: commands across calls, CDP attach through Envoy, live view.

One shared farm (two agents). Faults that disturb a farm (a killed agent, a drain)
are in test_session_faults.py, with a farm of their own.
"""

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import httpx
import imageio_ffmpeg
import pytest
from playwright.async_api import Playwright, async_playwright

from farm.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import Client, KeyFactory, http_client, png_size
from tests.helpers import assert_eventually
from tests.pages import Site

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class Sessions:
    """SessionService over HTTP/JSON with one key."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def create(self, **spec: Any) -> dict[str, Any]:
        response = self.http.post("/v1/sessions", json=spec)
        assert response.status_code == 200, response.text
        session = dict(response.json())
        assert session["state"] == "SESSION_STATE_ACTIVE"
        return session

    def get(self, session_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/sessions/{session_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def run(self, session_id: str, **command: Any) -> dict[str, Any]:
        response = self.http.post(f"/v1/sessions/{session_id}:run", json=command)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def close(self, session_id: str) -> dict[str, Any]:
        response = self.http.post(f"/v1/sessions/{session_id}:close")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait_closed(self, session_id: str, within: float) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while (session := self.get(session_id))["state"] != "SESSION_STATE_CLOSED":
            if time.monotonic() > deadline:
                pytest.fail(f"session {session_id} still open after {within} s")
            time.sleep(0.2)
        return session


@pytest.fixture(scope="module")
def sessions(admin: Client) -> Sessions:
    return Sessions(admin.http)


@pytest.fixture
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


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


def test_a_closed_session_refuses_commands_with_failed_precondition(sessions: Sessions) -> None:
    session = sessions.create()
    sessions.close(session["id"])
    response = sessions.http.post(f"/v1/sessions/{session['id']}:run", json={"content": {}})
    assert response.status_code == 400
    assert "closed (CLOSED_BY_USER)" in response.json()["message"]
    # Closing again answers the closed session, unchanged.
    assert sessions.close(session["id"])["closeReason"] == "CLOSED_BY_USER"


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


def test_bad_session_specs_name_the_field(sessions: Sessions) -> None:
    for spec, field in (
        ({"idleTimeoutSeconds": 5}, "idleTimeoutSeconds"),
        ({"maxLifetimeSeconds": 999999}, "maxLifetimeSeconds"),
        ({"viewport": {"width": 0, "height": 10}}, "viewport.width"),
        ({"region": "Not A Region"}, "region"),
        ({"profile": "../etc"}, "profile"),
        ({"device": "Nokia 3310"}, "device"),
    ):
        response = sessions.http.post("/v1/sessions", json=spec)
        assert response.status_code == 400, (spec, response.text)
        assert response.json()["message"].startswith(field), response.text


async def test_playwright_attaches_through_envoy_and_drives_the_sessions_page(
    farm: LocalFarm, sessions: Sessions, site: Site, playwright: Playwright
) -> None:
    session = sessions.create()
    try:
        sessions.run(session["id"], url=site.url("/form"))
        browser = await playwright.chromium.connect_over_cdp(
            session["cdpUrl"], headers={"authorization": f"Bearer {farm.admin_key}"}
        )
        try:
            (page,) = [page for context in browser.contexts for page in context.pages]
            assert await page.title() == "Form"
            await page.fill("#q", "typed over CDP")
            await page.click("#go")
        finally:
            await browser.close()
        # The command API sees what the attached client did.
        result = sessions.run(session["id"], extract={"fields": {"out": "#out"}})
        assert result["json"] == {"out": "You asked: typed over CDP"}
    finally:
        sessions.close(session["id"])


PUPPETEER = Path(__file__).parent / "puppeteer"
NODE = shutil.which("node")


@pytest.mark.skipif(
    NODE is None or not (PUPPETEER / "node_modules" / "puppeteer-core").is_dir(),
    reason="needs Node.js and `make node-deps` (puppeteer-core)",
)
def test_puppeteer_connects_through_envoy_and_drives_the_sessions_page(
    farm: LocalFarm, sessions: Sessions, site: Site
) -> None:
    session = sessions.create()
    try:
        assert NODE is not None
        attached = subprocess.run(
            [
                NODE,
                str(PUPPETEER / "attach.mjs"),
                session["cdpUrl"],
                farm.admin_key,
                site.url("/form"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert attached.returncode == 0, attached.stderr
        assert json.loads(attached.stdout) == {"title": "Form", "pages": 1}
        value = sessions.run(
            session["id"], script={"source": "() => document.querySelector('#q').value"}
        )
        assert value["json"] == "typed by puppeteer"
    finally:
        sessions.close(session["id"])


async def test_a_cdp_client_sees_only_its_own_sessions_targets(
    farm: LocalFarm, sessions: Sessions, make_key: KeyFactory, site: Site
) -> None:
    mine = sessions.create()
    other_key = make_key("sessions", tenant="session-neighbour")
    with http_client(farm, other_key.secret) as http:
        theirs = Sessions(http).create()
        try:
            Sessions(http).run(theirs["id"], url=site.url("/box"))
            sessions.run(mine["id"], url=site.url("/page"))
            targets = await cdp_call(mine["cdpUrl"], farm.admin_key, "Target.getTargets", {})
            urls = {t["url"] for t in targets["targetInfos"] if t["type"] == "page"}
            assert urls == {site.url("/page")}
            # Another tenant's key does not reach this session's browser at all.
            refused = await cdp_status(mine["cdpUrl"], other_key.secret)
            assert refused == 404
        finally:
            Sessions(http).close(theirs["id"])
            sessions.close(mine["id"])


async def test_cdp_attach_is_refused_without_a_key_or_the_sessions_scope(
    farm: LocalFarm, sessions: Sessions, make_key: KeyFactory
) -> None:
    session = sessions.create()
    try:
        assert await cdp_status(session["cdpUrl"], None) == 401
        assert await cdp_status(session["cdpUrl"], "bf_not-a-key") == 401
        assert await cdp_status(session["cdpUrl"], make_key("tasks.read").secret) == 403
        unknown = session["cdpUrl"].replace(session["id"], "ses_0000000000000000")
        assert await cdp_status(unknown, farm.admin_key) == 404
    finally:
        sessions.close(session["id"])
    # Closed: its browser is gone, and so is the way to it.
    assert await cdp_status(session["cdpUrl"], farm.admin_key) == 404


async def test_an_attached_client_cannot_reach_farm_or_private_addresses(
    farm: LocalFarm, sessions: Sessions, playwright: Playwright
) -> None:
    session = sessions.create()
    try:
        browser = await playwright.chromium.connect_over_cdp(
            session["cdpUrl"], headers={"authorization": f"Bearer {farm.admin_key}"}
        )
        try:
            page = browser.contexts[0].pages[0]
            nats_port = farm.config.ports.nats
            for target, why in (
                (f"http://127.0.0.1:{nats_port}/", "one of the farm's own services"),
                ("http://10.0.0.1/", "private"),
                ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
            ):
                # The egress guard answers in the proxy's place: no connection is made.
                response = await page.goto(target, timeout=10000)
                assert response is not None and response.status == 403, target
                assert why in await page.text_content("body"), target
            with pytest.raises(Exception, match="ERR_TUNNEL_CONNECTION_FAILED"):
                await page.goto("https://10.0.0.1/", timeout=10000)
            # A context of its own with its own proxy is refused by the filter.
            with pytest.raises(Exception, match="egress guard"):
                await browser.new_context(proxy={"server": "http://10.0.0.1:3128"})
        finally:
            await browser.close()
    finally:
        closed = sessions.close(session["id"])
    assert closed["closeReason"] == "CLOSED_BY_USER"


def test_a_session_closes_itself_when_idle_and_ends_its_sockets_with_a_reason(
    farm: LocalFarm, sessions: Sessions
) -> None:
    session = sessions.create(idleTimeoutSeconds=10)
    reason = asyncio.run(close_reason_of_idle_socket(session["cdpUrl"], farm.admin_key))
    assert reason == f"session {session['id']} closed: IDLE_TIMEOUT"
    closed = sessions.wait_closed(session["id"], within=15)
    assert closed["closeReason"] == "IDLE_TIMEOUT"


def test_a_session_ends_at_its_maximum_lifetime_however_busy(
    sessions: Sessions, site: Site
) -> None:
    session = sessions.create(maxLifetimeSeconds=10, idleTimeoutSeconds=60)
    deadline = time.monotonic() + 20
    while sessions.get(session["id"])["state"] == "SESSION_STATE_ACTIVE":
        assert time.monotonic() < deadline, "the session outlived its lifetime"
        response = sessions.http.post(f"/v1/sessions/{session['id']}:run", json={})
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


def test_sessions_over_grpc_are_listed_per_tenant(
    farm: LocalFarm, grpc_target: str, make_key: KeyFactory
) -> None:
    key = make_key("sessions", tenant="session-lister")
    metadata = (("authorization", f"Bearer {key.secret}"),)
    with grpc.insecure_channel(grpc_target) as channel:
        stub = sessions_pb2_grpc.SessionServiceStub(channel)
        created = stub.CreateSession(
            sessions_pb2.CreateSessionRequest(spec=sessions_pb2.SessionSpec(labels={"a": "b"})),
            metadata=metadata,
            timeout=60,
        )
        try:
            listed = stub.ListSessions(
                sessions_pb2.ListSessionsRequest(), metadata=metadata, timeout=10
            )
            assert [s.id for s in listed.sessions] == [created.id]
            assert listed.sessions[0].spec.labels == {"a": "b"}
        finally:
            stub.CloseSession(
                sessions_pb2.CloseSessionRequest(id=created.id), metadata=metadata, timeout=60
            )
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetSession(
                sessions_pb2.GetSessionRequest(id=created.id),
                metadata=(("authorization", f"Bearer {farm.admin_key}"),),
                timeout=10,
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_tenant_at_its_open_sessions_quota_is_refused(
    farm: LocalFarm, admin: Client, make_key: KeyFactory
) -> None:
    key = make_key("sessions", tenant="one-session-only")
    limits = {"maxOpenSessions": "1"}
    response = admin.http.patch("/v1/tenants/one-session-only/limits", json=limits)
    assert response.status_code == 200, response.text
    with http_client(farm, key.secret) as http:
        tenant_sessions = Sessions(http)
        first = tenant_sessions.create()
        try:
            refused = http.post("/v1/sessions", json={})
            assert refused.status_code == 429
            assert "maxOpenSessions" in refused.json()["message"]
        finally:
            tenant_sessions.close(first["id"])
        tenant_sessions.close(tenant_sessions.create()["id"])


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


async def cdp_call(url: str, key: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One CDP command over a fresh socket to the session's browser; its result."""
    headers = {"authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as socket:
        await socket.send_str(json.dumps({"id": 1, "method": method, "params": params}))
        async for message in socket:
            reply = json.loads(message.data)
            if reply.get("id") == 1:
                assert "result" in reply, reply
                return dict(reply["result"])
    pytest.fail(f"no answer to {method}")


async def cdp_status(url: str, key: str | None) -> int:
    """The HTTP status of a CDP WebSocket handshake (101 when it is let through)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url, headers=headers):
                return 101
        except aiohttp.WSServerHandshakeError as error:
            return error.status


async def close_reason_of_idle_socket(url: str, key: str) -> str:
    """Attaches and stays silent until the session ends the socket; the close frame's reason."""
    headers = {"authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as socket:
        message = await asyncio.wait_for(socket.receive(), timeout=30)
        assert message.type == aiohttp.WSMsgType.CLOSE, message
        return str(message.extra)
