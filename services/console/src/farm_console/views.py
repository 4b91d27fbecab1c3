"""What every page shares: the templates, the signed-in user's key, and the farm's refusals.

The API key lives only in an HttpOnly, SameSite=Strict cookie scoped to /console/
(Secure unless FARM_CONSOLE_COOKIE_SECURE is off): page scripts never see it, and
each call to the farm carries it. A key the farm no longer takes (revoked, expired)
signs the user out; a key without the scope a page needs gets that page's refusal.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jinja2
from jinja2.runtime import Context
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from farm_console.farm import Farm, FarmError
from farm_console.refusals import TooManyRefusals, admit_browser, count_refusal
from farm_console.settings import ConsoleSettings
from farm_core.errors import HTTP_STATUS_OF_CODE
from farm_core.failed_attempts import retry_after_header

PREFIX = "/console"
KEY_COOKIE = "farm_console_key"
SCOPES_COOKIE = "farm_console_scopes"
"""The signed-in key's scopes (from WhoAmI at sign-in), space-separated: they only decide
which links the header shows; each page's call is still checked by the farm."""
# The header's links: (path, text, the scope the page needs; "" for any key).
NAV = [
    ("/", "Overview", ""),
    ("/tasks", "Tasks", "tasks.read"),
    ("/sessions", "Sessions", "sessions"),
    ("/deadletters", "Dead letters", "admin"),
    ("/keys", "Keys & tenant", "admin"),
    ("/audit", "Audit log", "admin"),
]
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def json_text(value: Any) -> str:
    """`value` as indented JSON text, to show in a page (escaped there as any text).

    Not Jinja's tojson, which is for scripts: it writes é, & and < as JSON's u-escapes.
    """
    return json.dumps(value, indent=2, ensure_ascii=False)


TEMPLATES.env.filters["json_text"] = json_text


@jinja2.pass_context
def may(context: Context, scope: str) -> bool:
    """In a template: whether the signed-in key's scopes allow what needs `scope` (a form)."""
    return may_open(context["request"], scope)


TEMPLATES.env.globals["may"] = may


class NotSignedIn(Exception):
    """The request carries no key: the user is sent to the sign-in page."""


@dataclass(frozen=True)
class Caller:
    """The signed-in user's key and the farm it calls."""

    key: str
    farm: Farm
    settings: ConsoleSettings


def caller(request: Request) -> Caller:
    """The signed-in user of `request`; NotSignedIn without a key."""
    key = request.cookies.get(KEY_COOKIE, "")
    if not key:
        raise NotSignedIn
    # A cookie is the browser's to write: its keys are counted as the sign-in form's are.
    admit_browser(request)
    return Caller(key, request.app.state.farm, request.app.state.settings)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """`template` rendered with `context`, the settings and the page's path."""
    settings: ConsoleSettings = request.app.state.settings
    nav = [(path, text) for path, text, scope in NAV if may_open(request, scope)]
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {"prefix": PREFIX, "refresh": settings.refresh_seconds, "nav": nav, **context},
        status_code=status_code,
    )


def may_open(request: Request, scope: str) -> bool:
    """Whether the signed-in key's scopes allow a page that needs `scope`.

    A sign-in from before the scopes were kept has no scopes cookie: every link shows.
    """
    scopes = request.cookies.get(SCOPES_COOKIE)
    return not scope or scopes is None or scope in scopes.split()


def go_to(request: Request, path: str) -> Response:
    """Sends the browser to `path` (an htmx request is told through HX-Redirect)."""
    url = f"{PREFIX}{path}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"hx-redirect": url})
    return RedirectResponse(url, status_code=303)


def forget_key(response: Response) -> Response:
    """`response`, clearing the key and scopes cookies."""
    response.delete_cookie(KEY_COOKIE, path=f"{PREFIX}/")
    response.delete_cookie(SCOPES_COOKIE, path=f"{PREFIX}/")
    return response


async def not_signed_in(request: Request, exc: Exception) -> Response:
    """The answer to a request without a key: the sign-in page."""
    return go_to(request, "/signin")


async def farm_refused(request: Request, exc: Exception) -> Response:
    """The answer when a call to the farm fails: sign-in again, or the refusal shown."""
    assert isinstance(exc, FarmError)
    if exc.code == grpc.StatusCode.UNAUTHENTICATED:
        count_refusal(request)
        return forget_key(go_to(request, "/signin?refused=1"))
    # The status the HTTP API gives the refusal.
    status = HTTP_STATUS_OF_CODE[exc.code]
    template = "_refusal.html" if request.headers.get("hx-request") else "refusal.html"
    return render(request, template, status, error=exc)


async def too_many_refusals(request: Request, exc: Exception) -> Response:
    """The sign-in page, 429: this browser's address waits before any key of it is sent on."""
    assert isinstance(exc, TooManyRefusals)
    retry_after = retry_after_header(exc.wait_seconds)
    message = (
        f"Too many refused keys from your address ({exc.address}): "
        f"try again in {retry_after} seconds."
    )
    response = render(request, "signin.html", 429, error=message)
    response.headers["retry-after"] = retry_after
    return response


async def not_a_page(request: Request, exc: Exception) -> Response:
    """The console's page, with a way back, for no page at a path (404) or a button's GET (405).

    Instead of Starlette's plain "Not Found" text.
    """
    assert isinstance(exc, HTTPException)
    response = render(
        request, "missing.html", exc.status_code, method_not_allowed=exc.status_code == 405
    )
    response.headers.update(exc.headers or {})
    return response


EXCEPTION_HANDLERS: dict[Any, Any] = {
    NotSignedIn: not_signed_in,
    FarmError: farm_refused,
    TooManyRefusals: too_many_refusals,
    404: not_a_page,
    405: not_a_page,
}
"""How the console answers what a page raises: the sign-in page, the farm's refusal, its own 404."""


def page_size(request: Request, largest: int) -> int:
    """The list's page size: `?pageSize=` from 1 to `largest`, else `largest`."""
    asked = request.query_params.get("pageSize", "")
    return min(int(asked), largest) if asked.isdigit() and int(asked) > 0 else largest
