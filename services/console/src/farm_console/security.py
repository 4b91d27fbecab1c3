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
ARTIFACT_POLICY = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
"""An artifact (a page's HTML, a PDF) is shown as it is, never run as the console."""
VIDEO_POLICY = "default-src 'none'; media-src 'self'"
"""A recording's own page: Chromium's player, which runs no script of the artifact's."""
VIDEO_TYPES = frozenset({"video/webm", "video/mp4"})
"""The videos the farm makes (session and task recordings)."""


def artifact_headers(content_type: str) -> dict[str, str]:
    """The headers of an artifact's own page, by its content type.

    A video's page is not sandboxed: sandboxed, it had an opaque origin ('null'), and
    Chromium refused that page its own video (CORS), so a recording showed an empty
    player. Its type is one only a player shows (nosniff: never read as HTML), and its
    policy lets nothing but the video load.
    """
    policy = VIDEO_POLICY if content_type in VIDEO_TYPES else ARTIFACT_POLICY
    # no-store: a tenant's artifacts must not stay in the browser's cache after sign-out.
    return {"content-security-policy": policy, "cache-control": "no-store"}


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
