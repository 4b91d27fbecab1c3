"""A session browser refusing downloads again: a context gone meanwhile is no error, one left is."""

from pathlib import Path
from typing import Any, cast

import pytest
from playwright.async_api import Browser, CDPSession
from playwright.async_api import Error as PlaywrightError

from farm_agent.browser.temp_dirs import TempDirs
from farm_agent.sessions.browser import LaunchOptions, SessionBrowser


class ChromiumCdp:
    """The browser-level CDP session: made contexts, the denies sent; one context's deny fails.

    The failing context is disposed as its deny fails (`disposed`), or stays.
    """

    def __init__(self, contexts: list[str], failing: str, disposed: bool) -> None:
        self.contexts = contexts
        self.failing = failing
        self.disposed = disposed
        self.denied: list[str | None] = []

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if method == "Target.getBrowserContexts":
            return {"browserContextIds": list(self.contexts), "defaultBrowserContextId": "D"}
        assert method == "Browser.setDownloadBehavior" and params is not None
        assert params["behavior"] == "deny"
        context = params.get("browserContextId")
        if context == self.failing:
            if self.disposed:
                self.contexts.remove(context)
            raise PlaywrightError(f"Failed to find browser context for id {context}")
        self.denied.append(context)
        return {}


class QuietBrowser:
    def on(self, event: str, handler: object) -> None:
        pass


def session_browser(cdp: ChromiumCdp, tmp_path: Path) -> SessionBrowser:
    options = LaunchOptions(Path("chromium"), tmp_path, (), TempDirs(tmp_path / "temp"))
    browser = cast(Browser, QuietBrowser())
    return SessionBrowser(
        options, cast(Any, None), 1, "/devtools/browser/x", browser, tmp_path, cast(CDPSession, cdp)
    )


async def test_a_context_disposed_as_its_deny_is_sent_is_no_error(tmp_path: Path) -> None:
    cdp = ChromiumCdp(["A", "B", "C"], failing="B", disposed=True)
    await session_browser(cdp, tmp_path).refuse_downloads()
    assert cdp.denied == [None, "A", "C"]


async def test_a_context_left_allowed_is_an_error(tmp_path: Path) -> None:
    cdp = ChromiumCdp(["A", "B", "C"], failing="B", disposed=False)
    with pytest.raises(PlaywrightError, match="B"):
        await session_browser(cdp, tmp_path).refuse_downloads()
