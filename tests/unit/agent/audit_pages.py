"""Pages as the audits read them, for the audit checks' tests: a document and SEO facts."""

from typing import Any

from farm_agent.audits.observer import DocumentResponse


def document(
    *header_pairs: tuple[str, str], url: str = "https://shop.test/", status: int = 200
) -> DocumentResponse:
    """The main document's answer, 200 from shop.test unless told."""
    return DocumentResponse(url=url, status=status, headers=header_pairs)


def seo_facts(**changes: Any) -> dict[str, Any]:
    """What scripts/seo.js reads of a page fit for search, with `changes`."""
    facts: dict[str, Any] = {
        "title": "Fresh apples and pears, delivered",
        "descriptions": ["Fruit at your door."],
        "robots": [],
        "canonicals": [],
        "alternates": [],
        "headings": [{"level": 1, "selector": "h1"}, {"level": 2, "selector": "h2"}],
        "imagesWithoutAlt": [],
        "uncrawlableLinks": [],
    }
    return {**facts, **changes}
