"""The best-practices audit: https, security headers, cookie flags, mixed content, console errors.

Scored in the way of Mozilla's HTTP Observatory: 100, less each failed check's
penalty, at least 0 (docs/tasks.md has the table). HSTS and mixed content apply only
to an https page.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Page

from farm.tasks.v1 import tasks_pb2
from farm_agent.audits import headers
from farm_agent.audits.cookies import cookie_checks
from farm_agent.audits.observer import DocumentResponse, Observations
from farm_agent.audits.report import Check, audit_result, passed, penalty_score
from farm_agent.audits.scripts import page_function


@dataclass(frozen=True)
class PageSecurity:
    """What the checks read: the document's answer and what the page did."""

    document: DocumentResponse
    secure_context: bool
    insecure_urls: Sequence[str]
    console_errors: Sequence[str]


async def audit_best_practices(
    page: Page, document: DocumentResponse, seen: Observations
) -> tasks_pb2.AuditResult:
    """The page's https, headers, cookies, mixed content and console errors."""
    facts: dict[str, Any] = await page.evaluate(page_function("insecure"))
    return best_practices_result(
        PageSecurity(
            document=document,
            secure_context=facts["secureContext"],
            insecure_urls=[*facts["insecureUrls"], *seen.insecure_requests],
            console_errors=seen.console_errors,
        )
    )


def best_practices_result(page: PageSecurity) -> tasks_pb2.AuditResult:
    """The best-practices AuditResult of what the page sent and did."""
    document = page.document
    checks = [
        _https(page),
        headers.csp(document),
        headers.content_type_options(document),
        headers.frame_protection(document),
        headers.referrer_policy(document),
        *cookie_checks(
            document.values("set-cookie"),
            hsts=document.https
            and headers.hsts_max_age(document.header("strict-transport-security")) is not None,
        ),
        _console_errors(page.console_errors),
    ]
    if document.https:
        checks += [headers.hsts(document), _mixed_content(page.insecure_urls)]
    return audit_result(tasks_pb2.AUDIT_KIND_BEST_PRACTICES, checks, penalty_score(checks))


def _https(page: PageSecurity) -> Check:
    # A loopback page (localhost, 127.0.0.1) is a secure context too, as browsers see it.
    if page.secure_context:
        return passed("https")
    return headers.observatory_failure(
        "https",
        20,
        "The page is served over https",
        "The page is served over plain http; serve it over https and redirect http to it.",
        (page.document.url,),
    )


def _mixed_content(insecure_urls: Sequence[str]) -> Check:
    if not insecure_urls:
        return passed("mixed-content")
    return headers.observatory_failure(
        "mixed-content",
        20,
        "The https page loads nothing over plain http",
        "The https page loads these over plain http, where they can be changed on the way "
        "(browsers block or upgrade them); load them over https.",
        tuple(insecure_urls),
    )


def _console_errors(errors: Sequence[str]) -> Check:
    if not errors:
        return passed("console-errors")
    return headers.observatory_failure(
        "console-errors",
        10,
        "The page logs no errors to the console",
        "The page logged these errors to the console, each a failed request or a script "
        "that broke; fix them.",
        tuple(errors),
    )
