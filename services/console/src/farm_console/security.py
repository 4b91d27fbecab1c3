"""What every answer of the console carries, and what it refuses before any page runs.

- A Content-Security-Policy that allows scripts, styles and frames from the console's
  own origin only: no inline script or style, no eval (htmx runs with allowEval off).
- Requests that change something (POST) must come from the console's own pages:
  a cross-site form post is refused whatever cookie it carries (the cookie is
  SameSite=Strict too).
"""

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "frame-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
ARTIFACT_POLICY = (
    "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'"
)
"""An artifact (a page's HTML, a PDF, a recording) is shown as it is, never run as the console.

media-src: a video artifact's own page loads the video from its address; under
default-src 'none' alone Chromium blocked it, and a session's recording showed an
empty player."""

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
SAME_SITE = {"same-origin", "none"}

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def same_origin(headers: Headers) -> bool:
    """Whether a request came from the console's own pages (or was typed in)."""
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in SAME_SITE
    origin = headers.get("origin")
    if origin is None:
        return True
    return origin.split("://", 1)[-1] == headers.get("host", "")


class SecurityHeaders:
    """ASGI middleware: CSP and the other headers on every answer; cross-site POSTs refused."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer = MutableHeaders(scope=message)
                answer.setdefault("content-security-policy", CONTENT_SECURITY_POLICY)
                for name, value in SECURITY_HEADERS.items():
                    answer.setdefault(name, value)
            await send(message)

        headers = Headers(scope=scope)
        if scope["method"] not in SAFE_METHODS and not same_origin(headers):
            refusal = PlainTextResponse("cross-site request refused", status_code=403)
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
