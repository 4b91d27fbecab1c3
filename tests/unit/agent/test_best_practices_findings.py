"""A failed best-practices check says what is wrong on the page before the fix.

(farm_agent.audits.best_practices, headers and cookies), as the SEO checks do.
"""

import pytest

from farm_agent.audits.best_practices import PageSecurity, best_practices_result
from tests.unit.agent.audit_pages import document

CSP = ("content-security-policy", "default-src 'self'; frame-ancestors 'none'")
HSTS = ("strict-transport-security", "max-age=63072000")
NOSNIFF = ("x-content-type-options", "nosniff")


def hints(
    *header_pairs: tuple[str, str],
    url: str = "https://shop.test/",
    secure: bool = True,
    insecure: tuple[str, ...] = (),
    console_errors: tuple[str, ...] = (),
) -> dict[str, str]:
    """Each failed check's hint, by check id, for a page that sent `header_pairs`."""
    page = PageSecurity(
        document=document(*header_pairs, url=url),
        secure_context=secure,
        insecure_urls=insecure,
        console_errors=console_errors,
    )
    return {finding.id: finding.hint for finding in best_practices_result(page).findings}


SAFE = (CSP, HSTS, NOSNIFF)


@pytest.mark.parametrize(
    ("found", "check", "said"),
    [
        (
            hints(*SAFE, url="http://shop.test/", secure=False),
            "https",
            "The page is served over plain http; ",
        ),
        (hints(HSTS, NOSNIFF), "csp", "The page sends no Content-Security-Policy, "),
        (hints(CSP, NOSNIFF), "hsts", "The page sends no Strict-Transport-Security "),
        (
            hints(CSP, NOSNIFF, ("strict-transport-security", "max-age=86400")),
            "hsts",
            "Strict-Transport-Security's max-age is 86400 s; ",
        ),
        (
            hints(CSP, HSTS),
            "x-content-type-options",
            'The page sends no "X-Content-Type-Options: nosniff", ',
        ),
        (
            hints(("content-security-policy", "default-src 'self'"), HSTS, NOSNIFF),
            "frame-protection",
            "Other sites can frame the page (clickjacking): it sends neither ",
        ),
        (
            hints(*SAFE, insecure=("http://cdn.test/a.js",)),
            "mixed-content",
            "The https page loads these over plain http, ",
        ),
        (
            hints(*SAFE, console_errors=("TypeError: x is undefined",)),
            "console-errors",
            "The page logged these errors to the console, ",
        ),
        (
            hints(*SAFE, ("set-cookie", "theme=dark; HttpOnly; SameSite=Lax")),
            "cookie-secure",
            "These cookies have no Secure flag, ",
        ),
        (
            hints(*SAFE, ("set-cookie", "sessionid=1; Secure; SameSite=Lax")),
            "cookie-httponly",
            "These session cookies have no HttpOnly flag, ",
        ),
        (
            hints(*SAFE, ("set-cookie", "csrf_token=1; Secure; HttpOnly")),
            "cookie-samesite",
            "These cookies have an unknown SameSite value, SameSite=None without Secure, or ",
        ),
    ],
)
def test_a_failed_check_says_what_is_wrong_before_the_fix(
    found: dict[str, str], check: str, said: str
) -> None:
    assert found[check].startswith(said), found[check]
