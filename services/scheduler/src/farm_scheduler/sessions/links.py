"""The public addresses of a session's CDP socket and live view."""

from urllib.parse import urlsplit, urlunsplit

from farm_scheduler.sessions.records import SessionLinks


def session_links(public_url: str, session_id: str) -> SessionLinks:
    """The session's cdpUrl (ws, wss) and liveUrl (http, https) behind the edge at `public_url`."""
    edge = urlsplit(public_url.rstrip("/"))
    socket_scheme = "wss" if edge.scheme == "https" else "ws"
    path = f"{edge.path}/v1/sessions/{session_id}"
    return SessionLinks(
        discovery_url=urlunsplit((edge.scheme, edge.netloc, path, "", "")),
        cdp_url=urlunsplit((socket_scheme, edge.netloc, f"{path}/cdp", "", "")),
        live_url=urlunsplit((edge.scheme, edge.netloc, f"{path}/live", "", "")),
    )
