"""A session's dialogs wait for an answer: a command's `dialog`, MCP's handle_dialog, or an
attached Playwright client's own; unanswered, the agent dismisses them after a while.

On the shared farm, whose agents hold a dialog SESSION_DIALOG_SECONDS.
"""

import secrets
from typing import Any

import pytest
from playwright.async_api import Dialog, Playwright

from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import SESSION_DIALOG_SECONDS, KeyFactory
from tests.e2e.mcp_client import SCOPES, call, http_connection, texts
from tests.e2e.sessions_api import Sessions
from tests.helpers import eventually
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]


def out_text(sessions: Sessions, session_id: str) -> str:
    result = sessions.run(session_id, extract={"fields": {"out": "#out"}})
    return str(result["json"]["out"])


def test_a_command_answers_the_confirm_the_previous_command_opened(
    sessions: Sessions, site: Site
) -> None:
    session = sessions.create()
    try:
        sessions.run(session["id"], url=site.url("/ask"))
        opened = sessions.run(session["id"], steps=[{"click": "#confirm"}])
        assert opened["dialog"]["type"] == "confirm"
        assert opened["dialog"]["message"] == "Are you sure?"
        # Any other command is refused while the dialog waits.
        refused = sessions.http.post(
            f"/v1/sessions/{session['id']}:run", json={"extract": {"fields": {"out": "#out"}}}
        )
        assert refused.status_code == 400 and "DIALOG_SHOWING" in refused.text, refused.text
        answered = sessions.run(session["id"], dialog={"accept": True})
        assert "dialog" not in answered
        assert out_text(sessions, session["id"]) == "confirm=true"

        sessions.run(session["id"], steps=[{"click": "#confirm"}])
        sessions.run(session["id"], dialog={"accept": False})
        assert out_text(sessions, session["id"]) == "confirm=false"

        sessions.run(session["id"], steps=[{"click": "#prompt"}])
        sessions.run(session["id"], dialog={"accept": True, "promptText": "Ada"})
        assert out_text(sessions, session["id"]) == "prompt=Ada"
        # No dialog shows now: an answer is refused.
        refused = sessions.http.post(
            f"/v1/sessions/{session['id']}:run", json={"dialog": {"accept": True}}
        )
        assert refused.status_code == 400 and "NO_DIALOG" in refused.text, refused.text
    finally:
        sessions.close(session["id"])


def served_once_dialog_gone(sessions: Sessions, session_id: str) -> dict[str, Any] | None:
    """An extract of #out once the session serves commands again; None while its dialog shows."""
    response = sessions.http.post(
        f"/v1/sessions/{session_id}:run", json={"extract": {"fields": {"out": "#out"}}}
    )
    if response.status_code == 400 and "DIALOG_SHOWING" in response.text:
        return None
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_forgotten_dialog_is_dismissed_after_the_bound(sessions: Sessions, site: Site) -> None:
    session = sessions.create()
    try:
        sessions.run(session["id"], url=site.url("/ask"))
        opened = sessions.run(session["id"], steps=[{"click": "#confirm"}])
        assert opened["dialog"]["timeoutSeconds"] == SESSION_DIALOG_SECONDS
        # Commands are refused while the dialog waits; the first one served after the
        # bound finds it dismissed (not waited out with a sleep: it ends at the bound).
        served = eventually(
            lambda: served_once_dialog_gone(sessions, session["id"]),
            within=SESSION_DIALOG_SECONDS + 10,
            interval=0.25,
            message="the forgotten dialog was never dismissed",
        )
        assert served["json"]["out"] == "confirm=false"
    finally:
        sessions.close(session["id"])


async def test_mcp_handle_dialog_answers_the_dialog_a_click_opened(
    farm: LocalFarm, make_key: KeyFactory, site: Site
) -> None:
    key = make_key(*SCOPES, tenant=f"mcp-{secrets.token_hex(4)}").secret
    async with http_connection(farm, key) as client:
        await call(client, "navigate", url=site.url("/ask"))
        clicked = await call(client, "click", selector="#prompt")
        assert "A prompt dialog is showing: 'Your name?'" in clicked, clicked
        assert "handle_dialog" in clicked
        refused = await client.call_tool("get_content", {})
        assert refused.is_error and "handle_dialog" in texts(refused), texts(refused)
        await call(client, "handle_dialog", accept=True, prompt_text="Grace")
        assert "prompt=Grace" in await call(client, "get_content")
        await call(client, "click", selector="#confirm")
        await call(client, "handle_dialog", accept=True)
        assert "confirm=true" in await call(client, "get_content")
        await call(client, "close_browser")


async def test_mcp_evaluate_interrupted_by_a_dialog_says_so_like_click(
    farm: LocalFarm, make_key: KeyFactory, site: Site
) -> None:
    key = make_key(*SCOPES, tenant=f"mcp-{secrets.token_hex(4)}").secret
    async with http_connection(farm, key) as client:
        await call(client, "navigate", url=site.url("/ask"))
        evaluated = await call(
            client, "evaluate", script="() => document.querySelector('#confirm').click()"
        )
        assert evaluated.startswith("The page opened a dialog before this tool had its answer.")
        assert "A confirm dialog is showing: 'Are you sure?'" in evaluated, evaluated
        await call(client, "handle_dialog", accept=True)
        assert "confirm=true" in await call(client, "get_content")
        await call(client, "close_browser")


async def test_an_attached_playwright_client_answers_a_dialog_itself(
    farm: LocalFarm, sessions: Sessions, site: Site, playwright: Playwright
) -> None:
    session = sessions.create()
    try:
        sessions.run(session["id"], url=site.url("/ask"))
        browser = await playwright.chromium.connect_over_cdp(
            session["cdpUrl"], headers={"authorization": f"Bearer {farm.admin_key}"}
        )
        try:
            (page,) = [page for context in browser.contexts for page in context.pages]
            seen: list[str] = []

            async def accept(dialog: Dialog) -> None:
                seen.append(dialog.message)
                await dialog.accept()

            page.on("dialog", accept)
            await page.click("#confirm")
            assert await page.text_content("#out") == "confirm=true"
            assert seen == ["Are you sure?"]
        finally:
            await browser.close()
        # The client answered it: the session's commands go on.
        assert out_text(sessions, session["id"]) == "confirm=true"
    finally:
        sessions.close(session["id"])
