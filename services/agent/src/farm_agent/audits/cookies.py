"""The cookie checks of the best-practices audit: Secure, HttpOnly and SameSite flags.

Read from the Set-Cookie headers of the main document, as Mozilla's HTTP Observatory
reads them. A session cookie is one whose name holds "sess" or "login", an
anti-CSRF cookie one whose name holds "csrf" (the Observatory's rules).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from farm_agent.audits.headers import observatory_failure
from farm_agent.audits.report import Check, passed


@dataclass(frozen=True)
class SetCookie:
    """One Set-Cookie header: the cookie's name and flags."""

    name: str
    secure: bool
    http_only: bool
    same_site: str | None
    """The SameSite value in lower case; None when not given."""

    @classmethod
    def parse(cls, header: str) -> "SetCookie":
        """The cookie a Set-Cookie header sets; attribute names in any case."""
        pair, *attributes = header.split(";")
        secure = http_only = False
        same_site: str | None = None
        for attribute in attributes:
            key, _, value = attribute.strip().partition("=")
            key = key.strip().lower()
            if key == "secure":
                secure = True
            elif key == "httponly":
                http_only = True
            elif key == "samesite" and same_site is None:
                same_site = value.strip().lower()
        return cls(pair.partition("=")[0].strip(), secure, http_only, same_site)

    @property
    def session(self) -> bool:
        """Whether the name says it holds a session or a login."""
        return any(word in self.name.lower() for word in ("sess", "login"))

    @property
    def anti_csrf(self) -> bool:
        """Whether the name says it holds an anti-CSRF token."""
        return "csrf" in self.name.lower()


def cookie_checks(set_cookie_headers: Sequence[str], hsts: bool) -> list[Check]:
    """The Secure, HttpOnly and SameSite checks of the page's cookies (`hsts`: HSTS is on)."""
    cookies = [SetCookie.parse(header) for header in set_cookie_headers]
    return [_secure(cookies, hsts), _http_only(cookies), _same_site(cookies)]


def _secure(cookies: Sequence[SetCookie], hsts: bool) -> Check:
    open_cookies = [cookie for cookie in cookies if not cookie.secure]
    if not open_cookies:
        return passed("cookie-secure")
    session = any(cookie.session for cookie in open_cookies)
    # The Observatory's table: HSTS keeps the cookie off plain http, so the loss is smaller.
    penalty = {(True, False): 40, (True, True): 10, (False, False): 20, (False, True): 5}[
        (session, hsts)
    ]
    return observatory_failure(
        "cookie-secure",
        penalty,
        "Every cookie has the Secure flag",
        "These cookies have no Secure flag, so they can travel over plain http; set Secure "
        "on them.",
        tuple(cookie.name for cookie in open_cookies),
    )


def _http_only(cookies: Sequence[SetCookie]) -> Check:
    readable = [cookie for cookie in cookies if cookie.session and not cookie.http_only]
    if not readable:
        return passed("cookie-httponly")
    return observatory_failure(
        "cookie-httponly",
        30,
        "Session cookies have the HttpOnly flag",
        "These session cookies have no HttpOnly flag, so the page's scripts (and injected "
        "ones) can read them; set HttpOnly on them.",
        tuple(cookie.name for cookie in readable),
    )


def _same_site(cookies: Sequence[SetCookie]) -> Check:
    wrong = [
        cookie
        for cookie in cookies
        if (cookie.same_site is not None and cookie.same_site not in ("strict", "lax", "none"))
        or (cookie.same_site == "none" and not cookie.secure)
        or (cookie.same_site is None and cookie.anti_csrf)
    ]
    if not wrong:
        return passed("cookie-samesite")
    return observatory_failure(
        "cookie-samesite",
        20,
        "Cookies have a valid SameSite flag",
        "These cookies have an unknown SameSite value, SameSite=None without Secure, or (an "
        "anti-CSRF token) no SameSite; set SameSite=Strict or Lax on them.",
        tuple(cookie.name for cookie in wrong),
    )
