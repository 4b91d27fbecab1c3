"""A session's DevTools discovery: `json/version` as Chromium answers it, at the edge's address.

Tools given an http:// endpoint (Playwright's connect_over_cdp, chromedp) fetch
`<endpoint>/json/version` and attach to its `webSocketDebuggerUrl`. The agent asks
the session's own Chromium for its version and names the session's CDP socket at
the edge (FARM_PUBLIC_URL), with the request's CDP token when it came with one, so
that the attach passes the edge as the discovery did.
"""

from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

# What Chromium's json/version tells of itself; the rest (its own socket URL) stays here.
VERSION_FIELDS = ("Browser", "Protocol-Version", "User-Agent", "V8-Version", "WebKit-Version")
VERSION_TIMEOUT_SECONDS = 10.0


async def browser_version(debug_port: int) -> dict[str, str]:
    """The session's Chromium's own json/version fields (on the agent's loopback)."""
    timeout = aiohttp.ClientTimeout(total=VERSION_TIMEOUT_SECONDS)
    async with (
        aiohttp.ClientSession(timeout=timeout) as client,
        client.get(f"http://127.0.0.1:{debug_port}/json/version") as response,
    ):
        response.raise_for_status()
        answer = await response.json()
    return {name: str(answer[name]) for name in VERSION_FIELDS if name in answer}


def public_cdp_url(public_url: str, session_id: str, token: str = "") -> str:
    """The session's CDP socket at the edge (ws, wss under https), with `token` if given."""
    edge = urlsplit(public_url.rstrip("/"))
    scheme = "wss" if edge.scheme == "https" else "ws"
    query = f"token={quote(token, safe='')}" if token else ""
    path = f"{edge.path}/v1/sessions/{session_id}/cdp"
    return urlunsplit((scheme, edge.netloc, path, query, ""))


def discovery_answer(version: dict[str, str], cdp_url: str) -> dict[str, str]:
    """json/version's answer: the browser's fields, and the CDP socket to attach to."""
    return {**version, "webSocketDebuggerUrl": cdp_url}
