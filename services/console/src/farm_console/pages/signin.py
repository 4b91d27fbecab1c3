"""Signing in with an API key (checked by WhoAmI through the edge) and signing out.

A browser past its refused keys waits, and its key is not checked (refusals.py).
"""

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farm.auth.v1 import auth_pb2
from farm_console.farm import Farm, FarmError
from farm_console.refusals import admit_browser, count_refusal
from farm_console.settings import ConsoleSettings
from farm_console.views import KEY_COOKIE, PREFIX, SCOPES_COOKIE, forget_key, go_to, render
from farm_core.errors import HTTP_STATUS_OF_CODE

MAX_KEY_CHARS = 512


async def signin_page(request: Request) -> Response:
    """The sign-in form; after a refused key, says so."""
    refused = request.query_params.get("refused") == "1"
    message = "Your key is no longer accepted: sign in again." if refused else ""
    return render(request, "signin.html", error=message)


async def sign_in(request: Request) -> Response:
    """Checks the key with WhoAmI; a good one and its scopes are kept in HttpOnly cookies."""
    form = await request.form()
    key = str(form.get("key", "")).strip()
    if not key:
        return render(request, "signin.html", 400, error="Enter an API key.")
    if len(key) > MAX_KEY_CHARS or not (key.isascii() and key.isprintable()):
        # Such a key cannot even be sent as a bearer token: no farm key looks like it.
        return render(request, "signin.html", 401, error="Key refused: not an API key")
    # Before the farm is asked: a blocked address cannot tell a good key from a bad one.
    admit_browser(request)
    farm: Farm = request.app.state.farm
    try:
        me = await farm.call(key, farm.auth.WhoAmI, auth_pb2.WhoAmIRequest())
    except FarmError as refusal:
        if refusal.code != grpc.StatusCode.UNAUTHENTICATED:
            # Not the key's fault (the farm is busy or away): not counted against anyone.
            status = HTTP_STATUS_OF_CODE[refusal.code]
            return render(request, "signin.html", status, error=f"Not signed in: {refusal.message}")
        count_refusal(request)
        return render(request, "signin.html", 401, error=f"Key refused: {refusal.message}")
    settings: ConsoleSettings = request.app.state.settings
    response = go_to(request, "/")
    scopes = " ".join(me.get("scopes", []))
    for name, value in ((KEY_COOKIE, key), (SCOPES_COOKIE, scopes)):
        response.set_cookie(
            name,
            value,
            path=f"{PREFIX}/",
            httponly=True,
            secure=settings.cookie_secure,
            samesite="strict",
        )
    return response


async def signout_page(request: Request) -> Response:
    """A page with a sign-out button; a GET (a link, a typed address) signs nobody out.

    So a link on another site cannot sign the user out: the button's POST does, and
    SecurityHeaders takes a POST only from the console's own origin.
    """
    if not request.cookies.get(KEY_COOKIE):
        return go_to(request, "/signin")
    return render(request, "signout.html")


async def sign_out(request: Request) -> Response:
    """Forgets the key."""
    return forget_key(go_to(request, "/signin"))


routes = [
    Route("/signin", signin_page, methods=["GET"]),
    Route("/signin", sign_in, methods=["POST"]),
    Route("/signout", signout_page, methods=["GET"]),
    Route("/signout", sign_out, methods=["POST"]),
]
