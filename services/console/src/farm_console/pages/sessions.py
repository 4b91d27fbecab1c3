"""Sessions: the open ones, each with its live view (a view token), CDP attach tokens and Close."""

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from farm.sessions.v1 import sessions_pb2
from farm_console.views import caller, go_to, page_size, render

PAGE_SIZE = 100


async def open_sessions(request: Request) -> Response:
    """One page of the tenant's active sessions; the next page by its token."""
    user = caller(request)
    listing = await user.farm.call(
        user.key,
        user.farm.sessions.ListSessions,
        sessions_pb2.ListSessionsRequest(
            state=sessions_pb2.SESSION_STATE_ACTIVE,
            page_size=page_size(request, PAGE_SIZE),
            page_token=request.query_params.get("pageToken", ""),
        ),
    )
    return render(request, "sessions.html", listing=listing)


async def session_page(request: Request) -> Response:
    """A session: its state, its live view link, Close, and a button that makes a CDP token."""
    user = caller(request)
    session_id = request.path_params["session_id"]
    session = await user.farm.call(
        user.key, user.farm.sessions.GetSession, sessions_pb2.GetSessionRequest(id=session_id)
    )
    return render(request, "session.html", session=session)


async def cdp_token(request: Request) -> Response:
    """CreateCdpToken; the session's page showing the token's URLs to copy, and its expiry.

    The answer is the page itself, not a redirect to one: the token would otherwise sit
    in an address (the browser's history, the edge's log). Every answer is no-store.
    """
    user = caller(request)
    session_id = request.path_params["session_id"]
    token = await user.farm.call(
        user.key,
        user.farm.sessions.CreateCdpToken,
        sessions_pb2.CreateCdpTokenRequest(id=session_id),
    )
    session = await user.farm.call(
        user.key, user.farm.sessions.GetSession, sessions_pb2.GetSessionRequest(id=session_id)
    )
    return render(request, "session.html", session=session, cdp_token=token)


async def live_view(request: Request) -> Response:
    """On to the session's live view, with a view token made for this one opening.

    The view is a page of its own (its policy forbids framing it), opened in a new tab.
    """
    user = caller(request)
    token = await user.farm.call(
        user.key,
        user.farm.sessions.CreateViewToken,
        sessions_pb2.CreateViewTokenRequest(id=request.path_params["session_id"]),
    )
    # The view is served by the same edge: its path and query keep it on the origin
    # the console was opened under, whatever public address the farm names.
    parts = urlsplit(token["url"])
    return RedirectResponse(f"{parts.path}?{parts.query}", status_code=303)


async def close_session(request: Request) -> Response:
    """CloseSession; back to the list."""
    user = caller(request)
    session_id = request.path_params["session_id"]
    await user.farm.call(
        user.key, user.farm.sessions.CloseSession, sessions_pb2.CloseSessionRequest(id=session_id)
    )
    return go_to(request, "/sessions")


routes = [
    Route("/sessions", open_sessions, methods=["GET"]),
    Route("/sessions/{session_id}", session_page, methods=["GET"]),
    Route("/sessions/{session_id}/live", live_view, methods=["GET"]),
    Route("/sessions/{session_id}/close", close_session, methods=["POST"]),
    Route("/sessions/{session_id}/cdp-token", cdp_token, methods=["POST"]),
]
