"""A failed SEO check says what failed, not only what it wanted (farm_agent.audits.seo)."""

from typing import Any

import pytest

from farm_agent.audits.seo import seo_result
from tests.unit.agent.audit_pages import document, seo_facts

HREFLANG = [{"hreflang": "en-UK-x", "href": "https://a.test/", "selector": "#l"}]


@pytest.mark.parametrize(
    ("changes", "check", "said"),
    [
        ({"title": " "}, "document-title", "The page has no title; "),
        ({"descriptions": []}, "meta-description", "The page has no meta description "),
        ({"alternates": HREFLANG}, "hreflang", "An hreflang link names no valid language "),
        ({"imagesWithoutAlt": ["img.hero"]}, "image-alt", "An image has no alt attribute; "),
        ({"uncrawlableLinks": ["a#js"]}, "crawlable-links", "A link has no URL a crawler can "),
        ({"title": "Apples"}, "title-length", "The title has 6 characters; "),
        ({"headings": []}, "single-h1", "The page has 0 <h1> headings; "),
    ],
)
def test_a_failed_check_says_what_failed_before_the_fix(
    changes: dict[str, Any], check: str, said: str
) -> None:
    findings = {f.id: f for f in seo_result(seo_facts(**changes), document()).findings}
    assert findings[check].hint.startswith(said), findings[check].hint
