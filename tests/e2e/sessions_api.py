"""SessionService over HTTP/JSON, and raw CDP sockets to a session's browser, for e2e tests."""

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest

from tests.helpers import assert_eventually


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

    @contextlib.contextmanager
    def opened(self, **spec: Any) -> Iterator[dict[str, Any]]:
        """A session created with `spec` for the block, closed after it."""
        session = self.create(**spec)
        try:
            yield session
        finally:
            self.close(session["id"])

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


async def close_frame_of(socket: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    """Reads `socket` (live frames, CDP events) until its close frame: its code and reason."""
    while True:
        message = await socket.receive()
        if message.type == aiohttp.WSMsgType.CLOSE:
            return int(message.data), str(message.extra)
        assert message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), message


async def assert_drives(socket: aiohttp.ClientWebSocketResponse) -> None:
    """Asserts the open CDP `socket` still drives its browser: it answers a command."""
    await socket.send_str(json.dumps({"id": 7, "method": "Target.getTargets"}))
    while (reply := json.loads(await socket.receive_str(timeout=10))).get("id") != 7:
        pass
    assert "targetInfos" in reply["result"], reply


async def ends_of(sockets: list[aiohttp.ClientWebSocketResponse], within: float) -> list[object]:
    """The close frames (code, reason) the farm sends `sockets`, waited for at most `within`."""
    ends = [asyncio.create_task(close_frame_of(socket)) for socket in sockets]
    try:
        await assert_eventually(
            lambda: all(end.done() for end in ends),
            within=within,
            message="sockets whose key stopped being valid stayed open",
        )
        return [end.result() for end in ends]
    finally:
        for end in ends:
            end.cancel()


async def ws_status(url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status of a WebSocket handshake with no key (101 when let through)."""
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(url, headers=headers or {}) as socket:
                await assert_drives(socket)
                return 101
        except aiohttp.WSServerHandshakeError as error:
            return error.status
