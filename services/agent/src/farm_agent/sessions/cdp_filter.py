"""What an attached CDP client may ask of its session's browser.

A session's browser is a Chromium process of its own, so a client sees and touches
no other session's targets. What the filter keeps from it is the few commands
that would reach past the browser: the agent's files (file chooser paths,
extensions, DevTools resource loads), addresses the egress guard would refuse
(remote target discovery, a context proxy of its own, port forwarding), the agent's
disk (downloads: a client's download behavior is turned to `deny`, or answered
without the browser for a page's) and CDP handed to page scripts; and the browser's own targets
(its WebUI pages), which `cdp_targets.py` keeps out of the client's sight and reach.
Everything else is passed on.
"""

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from farm_agent.sessions.cdp_targets import TargetGuard

CDP_SERVER_ERROR = -32000
"""The JSON-RPC error code Chromium itself uses for a refused command."""

REFUSED_METHODS: dict[str, str] = {
    "Target.setRemoteLocations": "it makes the browser connect to addresses the egress guard "
    "has not checked",
    "Target.exposeDevToolsProtocol": "it hands the protocol to the page's own scripts",
    "Tethering.bind": "it opens a port on the agent",
    "Tethering.unbind": "it opens a port on the agent",
    "DOM.setFileInputFiles": "it reads files from the agent's disk; set a file input's "
    "content from the page instead",
    "Network.loadNetworkResource": "it loads resources outside the egress guard",
    "Browser.crash": "it would end the session's browser; close the session instead",
    "Browser.crashGpuProcess": "it would end the session's browser; close the session instead",
}
"""Commands refused outright, with the reason given to the client."""

REFUSED_DOMAINS: dict[str, str] = {
    "Extensions": "extensions would be loaded from the agent's disk",
    "PWA": "installing web apps writes to the agent's disk",
    "Cast": "it discovers devices on the agent's network",
}
"""Whole protocol domains refused, with the reason."""

NAVIGABLE_SCHEMES = frozenset({"http", "https", "about", "data", "blob", "javascript"})
"""URL schemes a client may open; file:, chrome: and the like reach into the agent."""
_ALLOWED_SCHEMES = ", ".join(f"{scheme}:" for scheme in sorted(NAVIGABLE_SCHEMES))

BROWSER_DOWNLOADS = "Browser.setDownloadBehavior"
"""Turned to `deny` (without a path) on its way to the browser."""
PAGE_DOWNLOADS = "Page.setDownloadBehavior"
"""Answered by the filter (downloads are denied already), never sent to the browser."""
PROXY_PARAMETERS = ("proxyServer", "proxyBypassList")


@dataclass(frozen=True)
class Forward:
    """Send this message on to the browser: the one checked, written anew (maybe rewritten).

    `as_sent` says the client's own text is exactly `message` written compactly, so its
    bytes may go on unchanged: Chromium then reads the very text the check read.
    """

    message: str
    as_sent: bool = False
    # The command's method, for what the session notes (a client answering a dialog).
    method: str = ""


@dataclass(frozen=True)
class Refuse:
    """Answer the client with an error instead of sending the message on."""

    reply: str


@dataclass(frozen=True)
class Answer:
    """Answer the client with a result of the filter's own; the browser never sees the command."""

    reply: str


@dataclass(frozen=True)
class CloseSession:
    """The client asked the browser to close: close the session, after answering."""

    reply: str


Decision = Forward | Refuse | Answer | CloseSession


def decide(raw: str | bytes, guard: TargetGuard | None = None) -> Decision:
    """What to do with one message from the client; `guard` keeps it to the session's targets."""
    try:
        message = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return Refuse(_error_reply(None, None, "the message is not JSON"))
    if not isinstance(message, dict):
        return Refuse(_error_reply(None, None, "the message is not a JSON object"))
    command_id, method, session = message.get("id"), message.get("method"), message.get("sessionId")
    if not isinstance(command_id, int) or not isinstance(method, str):
        return Refuse(
            _error_reply(command_id, session, "a command needs an integer id and a method")
        )
    params = message.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return Refuse(_error_reply(command_id, session, f"{method}: params must be an object"))
    reason = _refusal(method, params)
    if reason is None and guard is not None:
        reason = guard.refusal(command_id, method, params, session)
    if reason is not None:
        return Refuse(_error_reply(command_id, session, f"{method} is not allowed here: {reason}"))
    if method == "Browser.close":
        return CloseSession(_result_reply(command_id, session))
    if method == PAGE_DOWNLOADS:
        # Chromium resets (to its default, which saves) the context's download behavior
        # a page's session set as that session ends (a detach, the page closing), while
        # the client stays attached and the agent does not deny them again. Downloads
        # are denied already; the command has nothing left to do.
        return Answer(_result_reply(command_id, session))
    if method == BROWSER_DOWNLOADS and (
        params.get("behavior") != "deny" or "downloadPath" in params
    ):
        # Downloads are refused as in tasks; clients (Playwright) set this on attach,
        # so it is rewritten rather than refused. `default` too: it saves them in the
        # session's folder.
        message["params"] = {key: value for key, value in params.items() if key != "downloadPath"}
        message["params"]["behavior"] = "deny"
        return Forward(json.dumps(message), method=method)
    # What goes on is the message as checked, written anew: Chromium's parser never sees
    # text it could read otherwise (a repeated key, an escape) than the check did.
    checked = json.dumps(message, separators=(",", ":"))
    return Forward(checked, _written_as(raw, checked, message), method)


def _written_as(raw: str | bytes, checked: str, message: dict[str, Any]) -> bool:
    """Whether `raw` is the very text of `checked` (as JSON.stringify writes it, non-ASCII kept)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if raw.isascii():
        return raw == checked.encode()
    try:
        return raw == json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate, which only an escape can carry
        return False


def _refusal(method: str, params: dict[str, Any]) -> str | None:
    """Why `method` with `params` is refused; None if it may go on."""
    if method in REFUSED_METHODS:
        return REFUSED_METHODS[method]
    domain = method.split(".", 1)[0]
    if domain in REFUSED_DOMAINS:
        return REFUSED_DOMAINS[domain]
    if method == "Target.createBrowserContext" and any(p in params for p in PROXY_PARAMETERS):
        return "a context's own proxy would bypass the egress guard"
    if method in ("Page.navigate", "Target.createTarget"):
        url = params.get("url", "")
        scheme = urlsplit(url).scheme.lower() if isinstance(url, str) else ""
        if scheme and scheme not in NAVIGABLE_SCHEMES:
            return (
                f"the scheme {scheme!r} is refused, as it reaches into the agent; "
                f"URLs of {_ALLOWED_SCHEMES} may be opened"
            )
    return None


def _error_reply(command_id: object, session: object, text: str) -> str:
    reply: dict[str, Any] = {
        "id": command_id if isinstance(command_id, int) else 0,
        "error": {"code": CDP_SERVER_ERROR, "message": f"browserfarm: {text}"},
    }
    if isinstance(session, str):
        reply["sessionId"] = session
    return json.dumps(reply)


def _result_reply(command_id: int, session: object) -> str:
    reply: dict[str, Any] = {"id": command_id, "result": {}}
    if isinstance(session, str):
        reply["sessionId"] = session
    return json.dumps(reply)
