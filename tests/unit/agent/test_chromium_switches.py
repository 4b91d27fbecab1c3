"""Every browser gets Playwright's features and the switches that keep Chromium quiet.

Chromium honours only the last --disable-features and --enable-features: a list of
the agent's replaces Playwright's own, so it must repeat it. These checks read
Playwright's list from the installed driver, so that an upgrade that adds a feature
fails here rather than letting the feature through.
"""

import re
from pathlib import Path

import playwright
import pytest

from farm_agent.browser.chromium import (
    CHROMIUM_FLAGS,
    QUIET_FLAGS,
    task_browser_arguments,
)
from farm_agent.sessions.browser import AUTOMATION_FLAGS

CORE_BUNDLE = Path(playwright.__file__).parent / "driver/package/lib/coreBundle.js"


def playwright_features(kind: str) -> set[str]:
    """The feature names in Playwright's `disabledFeatures` or `enabledFeatures` list."""
    source = CORE_BUNDLE.read_text(encoding="utf-8")
    found = re.search(kind + r" = (?:\(\) => )?\[(.*?)\]", source, re.DOTALL)
    assert found, f"no {kind} list in {CORE_BUNDLE}"
    without_comments = re.sub(r"//[^\n]*", "", found[1])
    return set(re.findall(r'"([A-Za-z0-9]+)"', without_comments))


def features(arguments: list[str] | tuple[str, ...], switch: str) -> set[str]:
    """The features of the one `switch` (--disable-features, --enable-features) given."""
    given = [argument for argument in arguments if argument.startswith(f"{switch}=")]
    assert len(given) == 1, f"{switch} given {len(given)} times: {given}"
    return set(given[0].split("=", 1)[1].split(","))


BROWSERS = {
    "task": task_browser_arguments(page_heap_mb=0),
    "session": [*CHROMIUM_FLAGS, *AUTOMATION_FLAGS],
}


@pytest.mark.parametrize("browser", list(BROWSERS))
def test_a_browser_keeps_every_feature_playwright_turns_off_and_on(browser: str) -> None:
    arguments = BROWSERS[browser]
    assert playwright_features("disabledFeatures") <= features(arguments, "--disable-features")
    enabled = playwright_features("enabledFeatures") - {""}
    assert enabled <= features(arguments, "--enable-features")


@pytest.mark.parametrize("browser", list(BROWSERS))
def test_a_browser_asks_for_no_autofill_server_and_no_background_requests(
    browser: str,
) -> None:
    arguments = BROWSERS[browser]
    assert "AutofillServerCommunication" in features(arguments, "--disable-features")
    assert set(QUIET_FLAGS) <= set(arguments)
    # The machine's own flags stay.
    assert set(CHROMIUM_FLAGS) <= set(arguments)
