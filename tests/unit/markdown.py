"""Reading the docs' Markdown in tests: the anchors of their headings, their shell examples."""

import re
import shlex
from collections.abc import Iterator


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of Markdown `text`."""
    headings = re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def shell_blocks(text: str) -> list[str]:
    """The ```sh (or ```bash) blocks of Markdown `text`, in order."""
    return re.findall(r"^```(?:sh|bash)\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


def shell_commands(block: str) -> Iterator[list[str]]:
    """The words of each command of a shell block, as the shell splits them.

    A command goes on past a line ending in a backslash, or in a quoted string that
    has not closed (a JSON body over several lines); comments are left out.
    """
    pending = ""
    for line in block.splitlines():
        pending += line + "\n"
        if pending.rstrip().endswith("\\"):
            continue
        try:
            words = shlex.split(pending.replace("\\\n", " "), comments=True)
        except ValueError:  # a quote still open: the command goes on
            continue
        pending = ""
        if words:
            yield words
    if pending.strip():
        raise ValueError(f"a shell block ends inside a command: {pending!r}")
