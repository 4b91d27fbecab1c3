"""The target guard: the browser's own targets never reach an attached client."""

import json
from typing import Any

import pytest

from farm_agent.sessions.browser_socket import BrowserLinkError
from farm_agent.sessions.cdp_filter import Forward, Refuse, decide
from farm_agent.sessions.cdp_targets import TargetGuard
from farm_agent.sessions.ws_frames import OPCODE_BINARY, OPCODE_TEXT
from tests.unit.agent.ws_wire import open_link, server_frame, unmasked

PAGE = {"targetId": "P1", "type": "page", "url": "https://example.test/", "attached": True}
OMNIBOX = {"targetId": "U1", "type": "browser_ui", "url": "chrome://omnibox-popup.top-chrome/"}
WEBUI_PAGE = {"targetId": "U2", "type": "page", "url": "chrome://version/"}


def text(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of each unmasked server frame in `data`."""
    frames = []
    while data:
        size, start = data[1] & 0x7F, 2
        if size == 126:
            size, start = int.from_bytes(data[2:4], "big"), 4
        elif size == 127:
            size, start = int.from_bytes(data[2:10], "big"), 10
        frames.append((data[0] & 0x0F, data[start : start + size]))
        data = data[start + size :]
    return frames


def browser_said(*messages: dict[str, Any] | bytes) -> bytes:
    return b"".join(
        server_frame(OPCODE_BINARY, m)
        if isinstance(m, bytes)
        else server_frame(OPCODE_TEXT, text(m))
        for m in messages
    )


ANSWER = {"id": 7, "result": {"targetInfos": [OMNIBOX, PAGE, WEBUI_PAGE]}}
CREATED = {"method": "Target.targetCreated", "params": {"targetInfo": OMNIBOX}}
LARGE = {"id": 8, "result": {"data": "x" * 70000}}
SHOWN = {"method": "Target.targetCreated", "params": {"targetInfo": PAGE}}
STREAM = browser_said(ANSWER, LARGE, CREATED, b"y" * 300, SHOWN)


@pytest.mark.parametrize("sizes", [[], [1] * 60, [3, 20, 1, 300], [len(STREAM) - 1], [41, 42]])
async def test_the_browsers_own_targets_are_cut_from_its_messages_however_split(
    sizes: list[int],
) -> None:
    link, client, browser, _ = await open_link()
    link.inspector = guard = TargetGuard(link.send)
    assert isinstance(decide(text({"id": 7, "method": "Target.getTargets"}), guard), Forward)
    data = STREAM
    for size in sizes:
        link.data_received(data[:size])
        data = data[size:]
    if data:
        link.data_received(data)
    assert server_frames(bytes(client.data)) == [
        (OPCODE_TEXT, text({"id": 7, "result": {"targetInfos": [PAGE]}})),
        (OPCODE_TEXT, text(LARGE)),
        (OPCODE_BINARY, b"y" * 300),
        (OPCODE_TEXT, text(SHOWN)),
    ]
    assert browser.data == b""
    # What was hidden cannot be named by the client.
    refused = decide(text({"id": 9, "method": "Target.closeTarget", "params": OMNIBOX}), guard)
    assert isinstance(refused, Refuse) and "'browser_ui'" in refused.reply
    refused = decide(
        text({"id": 9, "method": "Target.activateTarget", "params": WEBUI_PAGE}), guard
    )
    assert isinstance(refused, Refuse) and "chrome: pages" in refused.reply


async def test_an_attach_to_the_browsers_own_target_is_answered_with_an_error_and_detached() -> (
    None
):
    link, client, browser, _ = await open_link()
    link.inspector = guard = TargetGuard(link.send)
    attach = {"id": 3, "method": "Target.attachToTarget", "params": {"targetId": "U1"}}
    assert isinstance(decide(text(attach), guard), Forward)
    attached = {"sessionId": "S1", "targetInfo": OMNIBOX, "waitingForDebugger": False}
    link.data_received(
        browser_said({"method": "Target.attachedToTarget", "params": attached})
        + browser_said({"id": 3, "result": {"sessionId": "S1"}})
    )
    [(_, reply)] = server_frames(bytes(client.data))
    assert json.loads(reply)["error"]["message"].startswith(
        "browserfarm: Target.attachToTarget is not allowed here: a target of type 'browser_ui'"
    )
    [(_, detach)] = unmasked(bytes(browser.data))
    command = json.loads(detach)
    assert command["method"] == "Target.detachFromTarget"
    assert command["params"] == {"sessionId": "S1"}
    # The detach's answer and event are the agent's own; the session is never usable.
    client.data.clear()
    link.data_received(
        browser_said(
            {"id": command["id"], "result": {}},
            {"method": "Target.detachedFromTarget", "params": {"sessionId": "S1"}},
        )
    )
    assert client.data == b""
    evaluate = {"id": 4, "method": "Runtime.evaluate", "sessionId": "S1", "params": {}}
    assert isinstance(decide(text(evaluate), guard), Refuse)


@pytest.mark.parametrize("cut", [50, 10])
async def test_a_split_message_the_guard_may_have_to_read_ends_the_link(cut: int) -> None:
    link, client, _, _ = await open_link()
    link.inspector = TargetGuard(link.send)
    message = text(CREATED)
    link.data_received(
        server_frame(OPCODE_TEXT, message[:cut], fin=False) + server_frame(0, message[cut:])
    )
    assert isinstance(link.closed.exception(), BrowserLinkError)
    assert client.data == b""


def test_an_id_waiting_for_a_target_answer_is_not_used_again() -> None:
    guard = TargetGuard(lambda command: None)
    assert isinstance(decide(text({"id": 5, "method": "Target.getTargets"}), guard), Forward)
    again = decide(text({"id": 5, "method": "Runtime.evaluate"}), guard)
    assert isinstance(again, Refuse) and "still waiting" in again.reply
    other_session = {"id": 5, "method": "Target.getTargets", "sessionId": "S2"}
    assert isinstance(decide(text(other_session), guard), Forward)
    assert guard.rewrite(text({"id": 5, "result": {"targetInfos": [OMNIBOX]}})) == text(
        {"id": 5, "result": {"targetInfos": []}}
    )
    assert isinstance(decide(text({"id": 5, "method": "Runtime.evaluate"}), guard), Forward)


async def test_downloads_are_denied_in_a_context_the_client_makes_before_it_hears_of_it() -> None:
    link, client, browser, _ = await open_link()
    link.inspector = guard = TargetGuard(link.send)
    make = {"id": 2, "method": "Target.createBrowserContext", "params": {}}
    assert isinstance(decide(text(make), guard), Forward)
    link.data_received(browser_said({"id": 2, "result": {"browserContextId": "C1"}}))
    # The deny went to the browser as the answer went to the client: any command of the
    # client's that names the context comes after it.
    [(_, deny)] = unmasked(bytes(browser.data))
    command = json.loads(deny)
    assert command["method"] == "Browser.setDownloadBehavior"
    assert command["params"] == {"behavior": "deny", "browserContextId": "C1"}
    assert server_frames(bytes(client.data)) == [
        (OPCODE_TEXT, text({"id": 2, "result": {"browserContextId": "C1"}}))
    ]
    # Its answer is the agent's own.
    client.data.clear()
    link.data_received(browser_said({"id": command["id"], "result": {}}))
    assert client.data == b""
