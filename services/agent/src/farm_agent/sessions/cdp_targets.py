"""Which of the browser's targets an attached client may see and attach to.

Besides the session's pages (and what they own: frames, workers), a full Chromium has
targets of its own: the `browser_ui` WebUI pages of its omnibox popup
(`chrome://omnibox-popup.top-chrome/`), which run with `chrome.send` and other
privileged bindings, and the browser target itself. They share the default context
with the session's pages, so the context does not fence them off. The guard reads
the browser's messages that carry target infos (the `Target` domain's events and the
answers to `Target.getTargets`, `getTargetInfo` and the attach commands) and keeps
every target that is not of an allowed type, or that shows a WebUI page, out of them.
An attach to such a target (whatever gave the client its id) is answered with an
error and the browser's session with it detached at once: Chromium announces the
session (`Target.attachedToTarget`, with its target info) before it answers the
attach, so no command of the client's can reach it first.

A context the client makes (`Target.createBrowserContext`) has no download behavior
set: Chromium's own default, not the farm, would decide what becomes of a download
there. Before its answer reaches the client, the guard has the browser deny downloads
in it; the client's next command, which needs the context's id, comes after that.
"""

import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

CDP_SERVER_ERROR = -32000

ALLOWED_TARGET_TYPES = frozenset(
    {
        "page",
        "tab",  # Puppeteer attaches to a page's tab target first
        "iframe",
        "worker",
        "shared_worker",
        "service_worker",
        "worklet",
        "shared_storage_worklet",
        "auction_worklet",
    }
)
"""What a session's pages make; `browser`, `browser_ui`, `other`… are the browser's own."""
WEBUI_SCHEMES = ("chrome:", "chrome-untrusted:", "devtools:", "chrome-extension:", "chrome-search:")
"""A target showing one of these is a page of the browser's own, whatever its type."""

ANSWERS_READ = frozenset(
    {
        "Target.getTargets",
        "Target.getTargetInfo",
        "Target.attachToTarget",
        "Target.attachToBrowserTarget",
    }
)
"""Commands whose answers name targets or sessions, so the guard reads them."""
CONTEXT_MADE = "Target.createBrowserContext"
"""Its answer is read too: downloads are denied in the context made."""
# Chromium writes a message's "method" or "id" first (the session id comes last).
_MAY_NAME_TARGETS = re.compile(rb'\{"(?:method":"Target\.|id":(-?\d+)[,}])')


class TargetGuard:
    """One client connection's view of the browser's targets.

    `send` writes a command of the agent's own to the browser (its answer never
    reaches the client).
    """

    def __init__(self, send: Callable[[str], None]) -> None:
        self._send = send
        self._pending: dict[tuple[int, str | None], str] = {}
        self._pending_ids: Counter[int] = Counter()
        self._hidden: dict[str, str] = {}  # target id -> why it is not the client's
        self._refused_sessions: dict[str, str] = {}  # session id -> why
        self._own_id = 0

    def refusal(
        self, command_id: int, method: str, params: dict[str, Any], session: object
    ) -> str | None:
        """Why a client's command is refused (None if it goes on); notes answers to read."""
        for sid in (session, params.get("sessionId")):
            if isinstance(sid, str) and sid in self._refused_sessions:
                why = self._refused_sessions[sid]
                return f"its session is with a target the client may not use: {why}"
        target = params.get("targetId")
        if isinstance(target, str) and target in self._hidden:
            return f"the target is not the session's: {self._hidden[target]}"
        key = (command_id, session if isinstance(session, str) else None)
        if key in self._pending:
            # Two answers of one id: the guard could not tell which one to read.
            return f"the id {command_id} is still waiting for the answer to a Target command"
        if method in ANSWERS_READ or method == CONTEXT_MADE:
            self._pending[key] = method
            self._pending_ids[command_id] += 1
        return None

    def wants(self, prefix: bytes) -> bool:
        """Whether a browser message starting with `prefix` must be read whole."""
        match = _MAY_NAME_TARGETS.match(prefix)
        if match is None:
            return False
        return match.group(1) is None or int(match.group(1)) in self._pending_ids

    def rewrite(self, payload: bytes) -> bytes | None:
        """The browser message to give the client: `payload` itself, another, or None (none)."""
        message = json.loads(payload)
        if not isinstance(message, dict):
            return payload
        if isinstance(message.get("method"), str):
            return payload if self._event_shown(message) else None
        command_id, session = message.get("id"), message.get("sessionId")
        if not isinstance(command_id, int):
            return payload
        method = self._pending.pop(
            (command_id, session if isinstance(session, str) else None), None
        )
        if method is None:
            return payload
        self._pending_ids[command_id] -= 1
        if not self._pending_ids[command_id]:
            del self._pending_ids[command_id]
        if method == "own":
            return None
        result = message.get("result")
        if not isinstance(result, dict):
            return payload
        if method == CONTEXT_MADE:
            self._deny_downloads(result.get("browserContextId"))
            return payload
        if method == "Target.getTargets":
            infos = result.get("targetInfos")
            if isinstance(infos, list):
                shown = [info for info in infos if self._shown(info)]
                if len(shown) != len(infos):
                    result["targetInfos"] = shown
                    return json.dumps(message, separators=(",", ":")).encode()
            return payload
        if method == "Target.getTargetInfo":
            info = result.get("targetInfo")
            if isinstance(info, dict) and info.get("type") == "browser":
                return payload  # the connection's own target, reached without an id
            reason = None if self._shown(info) else self._hidden.get(str(_target_id(info)))
        else:
            reason = self._refused_sessions.get(str(result.get("sessionId")))
        if reason is None:
            return payload
        return _error(command_id, session, f"{method} is not allowed here: {reason}")

    def _event_shown(self, message: dict[str, Any]) -> bool:
        method, params = message["method"], message.get("params")
        if not method.startswith("Target.") or not isinstance(params, dict):
            return True
        if "targetInfo" in params:
            if self._shown(params["targetInfo"]):
                return True
            if method == "Target.attachedToTarget":
                self._refuse_session(params.get("sessionId"), params["targetInfo"], message)
            return False
        target, sid = params.get("targetId"), params.get("sessionId")
        return not (
            (isinstance(target, str) and target in self._hidden)
            or (isinstance(sid, str) and sid in self._refused_sessions)
        )

    def _shown(self, info: object) -> bool:
        """Whether the client may see the target `info` describes; notes it if not."""
        if not isinstance(info, dict):
            return True
        kind, url = info.get("type"), info.get("url")
        reason = None
        if kind not in ALLOWED_TARGET_TYPES:
            reason = f"a target of type {kind!r} is the browser's own"
        elif isinstance(url, str) and url.lower().startswith(WEBUI_SCHEMES):
            reason = f"{url.split(':', 1)[0]}: pages are the browser's own"
        if reason is None:
            return True
        target = _target_id(info)
        if target is not None:
            self._hidden[target] = reason
        return False

    def _deny_downloads(self, context: object) -> None:
        """Denies downloads in a context the client made (again as it leaves: `browser.py`)."""
        if isinstance(context, str):
            params = {"behavior": "deny", "browserContextId": context}
            self._send_own({"method": "Browser.setDownloadBehavior", "params": params}, None)

    def _refuse_session(self, sid: object, info: object, event: dict[str, Any]) -> None:
        """The browser attached the client to a target not its own: detach it at once."""
        if not isinstance(sid, str):
            return
        self._refused_sessions[sid] = self._hidden.get(str(_target_id(info)), "not the session's")
        parent = event.get("sessionId")
        command = {"method": "Target.detachFromTarget", "params": {"sessionId": sid}}
        self._send_own(command, parent if isinstance(parent, str) else None)

    def _send_own(self, command: dict[str, Any], session: str | None) -> None:
        """Sends the browser a command of the agent's own; its answer never reaches the client."""
        self._own_id -= 1
        command = {"id": self._own_id, **command}
        if session is not None:
            command["sessionId"] = session
        self._pending[(self._own_id, session)] = "own"
        self._pending_ids[self._own_id] += 1
        self._send(json.dumps(command))


def _target_id(info: object) -> str | None:
    target = info.get("targetId") if isinstance(info, dict) else None
    return target if isinstance(target, str) else None


def _error(command_id: object, session: object, text: str) -> bytes:
    reply: dict[str, Any] = {
        "id": command_id,
        "error": {"code": CDP_SERVER_ERROR, "message": f"browserfarm: {text}"},
    }
    if isinstance(session, str):
        reply["sessionId"] = session
    return json.dumps(reply).encode()
