"""The filter between a session's CDP client and its browser's own WebUI (chrome://) targets."""

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.integration.agent.conftest import HAVE_CHROMIUM
from tests.integration.agent.session_browser.session_relay import (
    Relay,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs Debian's chromium"),
]


class Cdp:
    """A raw CDP client that keeps every event it reads."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.events: list[dict[str, Any]] = []
        self._next = 0

    async def send(self, method: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        self._next += 1
        await self.socket.send_str(
            json.dumps({"id": self._next, "method": method, "params": params or {}, **extra})
        )
        while True:
            message = json.loads((await self.socket.receive()).data)
            if message.get("id") == self._next:
                return message
            self.events.append(message)

    async def event(self, method: str, text: str, within: float = 10) -> dict[str, Any]:
        """The first event `method` (read or kept already) whose JSON holds `text`."""

        def matches(message: dict[str, Any]) -> bool:
            return message.get("method") == method and text in json.dumps(message)

        async with asyncio.timeout(within):
            while not any(matches(message) for message in self.events):
                self.events.append(json.loads((await self.socket.receive()).data))
        return next(message for message in self.events if matches(message))


# Chromium keeps the last --disable-features: its omnibox popups (a privileged
# chrome:// page each, `browser_ui` targets in the context of the session's pages)
# are made as without the agent's launch flag, so the filter is tested on its own.
WITH_WEBUI = pytest.mark.parametrize("session_browser", [("--disable-features=",)], indirect=True)


async def browser_ui_targets(relay: Relay) -> list[dict[str, Any]]:
    """The browser's own WebUI targets, as the agent (not the client) sees them."""
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.browser.cdp_endpoint) as ws:
        reply = await Cdp(ws).send("Target.getTargets")
    return [t for t in reply["result"]["targetInfos"] if t["type"] == "browser_ui"]


async def test_a_session_browser_makes_no_browser_ui_target(relay: Relay) -> None:
    assert await browser_ui_targets(relay) == []


@WITH_WEBUI
async def test_the_client_sees_the_sessions_pages_and_no_browser_ui_target(relay: Relay) -> None:
    assert await browser_ui_targets(relay), "this Chromium has no WebUI target to hide"
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.url) as socket:
        cdp = Cdp(socket)
        reply = await cdp.send("Target.getTargets")
        assert [t["type"] for t in reply["result"]["targetInfos"]] == ["page"]
        await cdp.send("Target.setDiscoverTargets", {"discover": True})
        await cdp.send(
            "Target.setAutoAttach",
            {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True},
        )
        await cdp.send("Target.createTarget", {"url": "about:blank"})
        infos = [e["params"]["targetInfo"] for e in cdp.events if "targetInfo" in e["params"]]
        assert infos and {info["type"] for info in infos} == {"page"}
        assert not any(info["url"].startswith("chrome:") for info in infos)


@WITH_WEBUI
async def test_attaching_to_a_browser_ui_target_is_refused(relay: Relay) -> None:
    target = (await browser_ui_targets(relay))[0]["targetId"]
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.url) as socket:
        cdp = Cdp(socket)
        reply = await cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        assert "error" in reply, reply
        assert "'browser_ui'" in reply["error"]["message"]
        assert not any(e["method"] == "Target.attachedToTarget" for e in cdp.events)
        # Known now: refused before it reaches the browser, as is its info.
        for method in ("Target.attachToTarget", "Target.getTargetInfo", "Target.activateTarget"):
            reply = await cdp.send(method, {"targetId": target, "flatten": True})
            assert "browser_ui" in reply["error"]["message"], reply
        reply = await cdp.send("Target.attachToBrowserTarget")
        assert "'browser'" in reply["error"]["message"], reply


async def test_a_clients_page_cannot_become_a_webui_page(relay: Relay) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(relay.url) as socket:
        cdp = Cdp(socket)
        (page,) = (await cdp.send("Target.getTargets"))["result"]["targetInfos"]
        attach = {"targetId": page["targetId"], "flatten": True}
        session = (await cdp.send("Target.attachToTarget", attach))["result"]["sessionId"]
        await cdp.send("Target.setDiscoverTargets", {"discover": True})
        await cdp.send("Log.enable", sessionId=session)
        # Asked over CDP: refused by the agent's filter, whatever the spelling.
        for url in ("chrome://version", " CHROME://settings", "\tchrome:version"):
            reply = await cdp.send("Page.navigate", {"url": url}, sessionId=session)
            assert "the scheme 'chrome' is refused" in reply["error"]["message"], reply
        # An about: alias of a WebUI page is let through, and Chromium blocks it.
        await cdp.send("Page.navigate", {"url": "about:version"}, sessionId=session)
        await cdp.event("Target.targetInfoChanged", '"url": "about:blank#blocked"')
        # The page's own script may not leave for a chrome: URL (Chromium refuses it).
        for script in ("window.location = 'chrome://settings'", "window.open('chrome://version')"):
            await cdp.send("Runtime.evaluate", {"expression": script}, sessionId=session)
            host = script.split("//")[1].rstrip("')")
            await cdp.event(
                "Log.entryAdded", f"Not allowed to load local resource: chrome://{host}/"
            )
        async with http.ws_connect(relay.browser.cdp_endpoint) as direct:
            infos = (await Cdp(direct).send("Target.getTargets"))["result"]["targetInfos"]
        assert [info["url"] for info in infos] == ["about:blank#blocked"]
