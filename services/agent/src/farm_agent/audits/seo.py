"""The SEO audit: what search engines read from a page, checked as Lighthouse's SEO audits do.

A check weighs by its impact (critical 10, serious 7, moderate 3, minor 1); the score
is the share of the weight of the checks that apply which passed. `canonical` and
`hreflang` apply only to a page that declares them.
"""

import itertools
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import Page

from farm.tasks.v1 import tasks_pb2
from farm_agent.audits.observer import DocumentResponse
from farm_agent.audits.report import Check, audit_result, failed, passed, weighted_score
from farm_agent.audits.scripts import page_function

TITLE_CHARS = (10, 60)
"""The shortest and longest title that reads well in search results."""

# A language (2-3 letters), an optional script (4) and region (2 letters or 3 digits),
# or "x-default": the forms search engines take in hreflang.
HREFLANG = re.compile(r"^(x-default|[a-z]{2,3}(-[a-z]{4})?(-([a-z]{2}|[0-9]{3}))?)$", re.IGNORECASE)
NOINDEX = re.compile(r"\b(noindex|none)\b", re.IGNORECASE)


async def audit_seo(page: Page, document: DocumentResponse) -> tasks_pb2.AuditResult:
    """The page's title, description, canonical, robots, hreflang, headings, alt, links, status."""
    facts: dict[str, Any] = await page.evaluate(page_function("seo"))
    return seo_result(facts, document)


def seo_result(facts: dict[str, Any], document: DocumentResponse) -> tasks_pb2.AuditResult:
    """The SEO AuditResult of the document's facts (as scripts/seo.js reads them)."""
    checks = [
        _status(document),
        _robots(facts["robots"], document.values("x-robots-tag")),
        *_title(facts["title"]),
        _description(facts["descriptions"]),
        *_canonical(facts["canonicals"]),
        *_hreflang(facts["alternates"]),
        _one_h1(facts["headings"]),
        _heading_order(facts["headings"]),
        _image_alt(facts["imagesWithoutAlt"]),
        _crawlable_links(facts["uncrawlableLinks"]),
    ]
    return audit_result(tasks_pb2.AUDIT_KIND_SEO, checks, weighted_score(checks))


def _status(document: DocumentResponse) -> Check:
    if document.status < 400:
        return passed("http-status", "critical")
    return failed(
        "http-status",
        "critical",
        "The page answers with a successful HTTP status",
        f"The page answered HTTP {document.status}; search engines do not index error pages. "
        "Serve the page with status 200 (or redirect it).",
        [document.url],
    )


def _robots(meta_values: Sequence[str], header_values: Sequence[str]) -> Check:
    blocking = [
        f"<meta name=robots content={value!r}>" for value in meta_values if NOINDEX.search(value)
    ]
    blocking += [f"X-Robots-Tag: {value}" for value in header_values if NOINDEX.search(value)]
    if not blocking:
        return passed("robots", "critical")
    return failed(
        "robots",
        "critical",
        "The page may be indexed",
        "The page asks search engines not to index it (noindex); remove the directive if it "
        "should be found.",
        blocking,
    )


def _title(title: str) -> list[Check]:
    title = title.strip()
    if not title:
        return [
            failed(
                "document-title",
                "serious",
                "The page has a title",
                "The page has no title; give it a <title> that says what it is about: search "
                "results show it.",
            )
        ]
    shortest, longest = TITLE_CHARS
    if shortest <= len(title) <= longest:
        return [passed("document-title", "serious"), passed("title-length", "minor")]
    return [
        passed("document-title", "serious"),
        failed(
            "title-length",
            "minor",
            f"The title is {shortest} to {longest} characters long",
            f"The title has {len(title)} characters; search results cut long titles and "
            "short ones say little.",
            [title],
        ),
    ]


def _description(descriptions: Sequence[str]) -> Check:
    if any(description.strip() for description in descriptions):
        return passed("meta-description", "serious")
    return failed(
        "meta-description",
        "serious",
        "The page has a meta description",
        "The page has no meta description (or an empty one); add "
        '<meta name="description" content="..."> summing up the page: search results show '
        "it under the title.",
    )


def _canonical(canonicals: Sequence[str]) -> list[Check]:
    if not canonicals:
        return []
    if len(set(canonicals)) > 1:
        problem = "The page names more than one canonical URL; keep one."
    elif not _absolute_http(canonicals[0]):
        problem = "The canonical URL is not an absolute http(s) URL; write it out in full."
    else:
        return [passed("canonical", "moderate")]
    return [
        failed(
            "canonical",
            "moderate",
            "The page names one valid canonical URL",
            problem,
            canonicals,
        )
    ]


def _hreflang(alternates: Sequence[dict[str, str]]) -> list[Check]:
    if not alternates:
        return []
    bad = [
        alternate["selector"]
        for alternate in alternates
        if not HREFLANG.fullmatch(alternate["hreflang"].strip())
        or not _absolute_http(alternate["href"])
    ]
    if not bad:
        return [passed("hreflang", "moderate")]
    return [
        failed(
            "hreflang",
            "moderate",
            "Every hreflang link names a valid language and an absolute URL",
            "An hreflang link names no valid language or no absolute URL; use a language "
            'code with an optional region ("de", "en-GB") or "x-default", and an absolute URL '
            "in href.",
            bad,
        )
    ]


def _one_h1(headings: Sequence[dict[str, Any]]) -> Check:
    firsts = [heading["selector"] for heading in headings if heading["level"] == 1]
    if len(firsts) == 1:
        return passed("single-h1", "moderate")
    return failed(
        "single-h1",
        "moderate",
        "The page has exactly one <h1>",
        f"The page has {len(firsts)} <h1> headings; give it one that names its subject.",
        firsts,
    )


def _heading_order(headings: Sequence[dict[str, Any]]) -> Check:
    skipped = [
        current["selector"]
        for previous, current in itertools.pairwise(headings)
        if current["level"] > previous["level"] + 1
    ]
    if not skipped:
        return passed("heading-order", "minor")
    return failed(
        "heading-order",
        "minor",
        "Heading levels go down one at a time",
        "A heading skips a level (an <h3> after an <h1>); use the next level down.",
        skipped,
    )


def _image_alt(images: Sequence[str]) -> Check:
    if not images:
        return passed("image-alt", "moderate")
    return failed(
        "image-alt",
        "moderate",
        "Every image has an alt attribute",
        "An image has no alt attribute; describe each image in its alt attribute "
        '(alt="" for decoration): search engines read it instead of the image.',
        images,
    )


def _crawlable_links(links: Sequence[str]) -> Check:
    if not links:
        return passed("crawlable-links", "moderate")
    return failed(
        "crawlable-links",
        "moderate",
        "Links have real URLs in href",
        'A link has no URL a crawler can follow ("javascript:" or a click handler); give '
        "each link a real URL in href.",
        links,
    )


def _absolute_http(url: str) -> bool:
    parts = urlsplit(url.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)
