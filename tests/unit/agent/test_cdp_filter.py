"""What an attached CDP client may send to its session's browser."""

import json
from typing import Any

import pytest

from farm_agent.sessions.cdp_filter import (
    CDP_SERVER_ERROR,
    Answer,
    CloseSession,
    Forward,
    Refuse,
    decide,
)


def command(method: str, params: object = None, **extra: object) -> str:
    message: dict[str, object] = {"id": 7, "method": method, **extra}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


def refused(decision: object) -> dict[str, Any]:
    assert isinstance(decision, Refuse), decision
    reply: dict[str, Any] = json.loads(decision.reply)
    assert reply["error"]["code"] == CDP_SERVER_ERROR
    return reply


@pytest.mark.parametrize(
    "method",
    [
        "Runtime.evaluate",
        "Page.captureScreenshot",
        "Target.getTargets",
        "Target.createBrowserContext",
        "Target.attachToTarget",
        "Network.setCookies",
        "Input.dispatchMouseEvent",
    ],
)
def test_ordinary_commands_pass_unchanged(method: str) -> None:
    raw = command(method, {"expression": "1"}, sessionId="S1")
    decision = decide(raw)
    assert isinstance(decision, Forward)
    assert json.loads(decision.message) == json.loads(raw)


def no_repeated_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"repeated keys {keys}"
    return dict(pairs)


@pytest.mark.parametrize(
    "raw",
    [
        # Read by one parser as a plain command, by another as a proxied context.
        '{"id":7,"method":"Target.createBrowserContext","params":{"proxyServer":"x"},'
        '"method":"Target.getTargets"}',
        '{"id":7,"method":"Page.navigate","params":{"url":"file:///etc/passwd",'
        '"url":"https://example.org/"}}',
        '{"id":7,"method":"Target.getTarget\u0073"}',
    ],
)
def test_what_goes_on_is_exactly_what_was_checked(raw: str) -> None:
    decision = decide(raw)
    assert isinstance(decision, Forward)
    forwarded = json.loads(decision.message, object_pairs_hook=no_repeated_keys)
    assert forwarded == json.loads(raw)


@pytest.mark.parametrize(
    ("raw", "as_sent"),
    [
        # As JSON.stringify writes a command (Playwright, Puppeteer): its bytes may go on.
        (b'{"id":1,"method":"Input.insertText","params":{"text":"caf\xc3\xa9 \\"q\\""}}', True),
        ('{"id":2,"method":"Runtime.evaluate","sessionId":"S1"}', True),
        # Any other spelling goes on written anew.
        (b'{"id": 3, "method": "Page.enable"}', False),
        (b'{"id":4,"method":"Target.getTarget\\u0073"}', False),
        (b'{"id":5,"method":"Page.enable","method":"Page.enable"}', False),
        # A lone surrogate can only be an escape, which JSON.stringify writes as such.
        (b'{"id":6,"method":"Runtime.evaluate","params":{"expression":"\\ud800"}}', True),
        (b'{"id":7,"method":"Runtime.evaluate","params":{"expression":"\xc3\xa9\\ud800"}}', False),
    ],
)
def test_a_command_goes_on_as_sent_only_when_its_text_is_what_was_checked(
    raw: str | bytes, as_sent: bool
) -> None:
    decision = decide(raw)
    assert isinstance(decision, Forward)
    assert decision.as_sent is as_sent


@pytest.mark.parametrize(
    "method",
    [
        "Target.setRemoteLocations",
        "Target.exposeDevToolsProtocol",
        "Tethering.bind",
        "DOM.setFileInputFiles",
        "Network.loadNetworkResource",
        "Browser.crash",
        "Extensions.loadUnpacked",
        "PWA.install",
        "Cast.enable",
    ],
)
def test_commands_that_reach_past_the_browser_are_refused_with_their_id(method: str) -> None:
    reply = refused(decide(command(method, {}, sessionId="S1")))
    assert reply["id"] == 7
    assert reply["sessionId"] == "S1"
    assert method in reply["error"]["message"]


def test_a_context_with_its_own_proxy_is_refused_but_a_plain_one_passes() -> None:
    plain = command("Target.createBrowserContext", {"disposeOnDetach": True})
    assert isinstance(decide(plain), Forward)
    proxied = command("Target.createBrowserContext", {"proxyServer": "http://10.0.0.1:3128"})
    assert "egress guard" in refused(decide(proxied))["error"]["message"]


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("Page.navigate", "https://example.com/", True),
        ("Page.navigate", "about:blank", True),
        ("Page.navigate", "data:text/html,<p>x</p>", True),
        ("Page.navigate", "file:///etc/passwd", False),
        ("Page.navigate", "FILE:///etc/passwd", False),
        ("Page.navigate", "chrome://settings", False),
        ("Target.createTarget", "view-source:https://example.com", False),
        ("Target.createTarget", "http://example.com", True),
        ("Target.createTarget", "data:text/html,<p>x</p>", True),
        ("Target.createTarget", "about:blank", True),
    ],
)
def test_only_web_urls_are_opened(method: str, url: str, allowed: bool) -> None:
    decision = decide(command(method, {"url": url}))
    if allowed:
        assert isinstance(decision, Forward)
    else:
        assert "scheme" in refused(decision)["error"]["message"]


def test_a_refused_scheme_is_answered_with_the_schemes_that_may_be_opened() -> None:
    # data: pages are the browser's own, as about:blank is: the filter keeps out only
    # what reaches into the agent, and its message must not claim "only http and https".
    decision = decide(command("Target.createTarget", {"url": "file:///etc/passwd"}))
    assert refused(decision)["error"]["message"] == (
        "browserfarm: Target.createTarget is not allowed here: the scheme 'file' is refused, "
        "as it reaches into the agent; "
        "URLs of about:, blob:, data:, http:, https:, javascript: may be opened"
    )


def test_downloads_are_turned_to_deny_without_the_clients_path() -> None:
    raw = command(
        "Browser.setDownloadBehavior",
        {"behavior": "allowAndName", "downloadPath": "/tmp/x", "eventsEnabled": True},
    )
    decision = decide(raw)
    assert isinstance(decision, Forward)
    params = json.loads(decision.message)["params"]
    assert params == {"behavior": "deny", "eventsEnabled": True}


def test_the_default_download_behavior_is_turned_to_deny_too() -> None:
    raw = command("Browser.setDownloadBehavior", {"behavior": "default", "browserContextId": "C1"})
    decision = decide(raw)
    assert isinstance(decision, Forward)
    params = json.loads(decision.message)["params"]
    assert params == {"behavior": "deny", "browserContextId": "C1"}


@pytest.mark.parametrize("behavior", ["allow", "deny"])
def test_a_pages_download_behavior_is_answered_without_the_browser(behavior: str) -> None:
    # Chromium would reset the context's behavior (to saving) as the page's session ends.
    decision = decide(command("Page.setDownloadBehavior", {"behavior": behavior}, sessionId="S2"))
    assert isinstance(decision, Answer)
    assert json.loads(decision.reply) == {"id": 7, "result": {}, "sessionId": "S2"}


def test_browser_close_closes_the_session_and_answers_the_client() -> None:
    decision = decide(command("Browser.close", sessionId="S2"))
    assert isinstance(decision, CloseSession)
    assert json.loads(decision.reply) == {"id": 7, "result": {}, "sessionId": "S2"}


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        json.dumps({"method": "Runtime.evaluate"}),
        json.dumps({"id": 1}),
        json.dumps({"id": 1, "method": "Page.navigate", "params": [1]}),
        b"\xff\xfe",
    ],
)
def test_malformed_messages_are_answered_with_an_error(raw: str | bytes) -> None:
    refused(decide(raw))
