"""Reading the docs' Markdown in tests: the anchors of their headings."""

import re


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of Markdown `text`."""
    headings = re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}
