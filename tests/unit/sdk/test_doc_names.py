"""docs/sdk.md names only classes and methods the SDK has: a user writes `except` with them."""

import builtins
import re
from pathlib import Path

import browserfarm

SDK_DOC = (Path(__file__).resolve().parents[3] / "docs" / "sdk.md").read_text()
PROSE = re.sub(r"```.*?```", "", SDK_DOC, flags=re.DOTALL)
# Calls of other libraries the prose names: datetime.now(), playwright's sync_playwright().
OTHER_LIBRARIES = {"now", "sync_playwright"}


def test_every_class_the_sdk_doc_names_is_the_sdks_or_pythons() -> None:
    # `InvalidArgument`, `TaskStatus`, `RuntimeError`: a word in code type, capitalized, not CAPS.
    named = set(re.findall(r"`([A-Z][a-z]\w*)`", PROSE))
    unknown = {name for name in named if not hasattr(browserfarm, name)}
    assert unknown <= set(dir(builtins)), sorted(unknown - set(dir(builtins)))


def test_every_method_the_sdk_doc_names_is_one_of_its_objects() -> None:
    called = set(re.findall(r"`(?:[a-z_.]+\.)?([a-z_]+)\(", PROSE)) - OTHER_LIBRARIES
    owners = (
        browserfarm.Client,
        browserfarm.AsyncClient,
        browserfarm.Session,
        browserfarm.AsyncSession,
        browserfarm.Task,
    )
    assert {name for name in called if not any(hasattr(kind, name) for kind in owners)} == set()
