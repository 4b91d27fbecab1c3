"""One session's own Chromium process, with a DevTools port for attached clients.

Tasks share the pool's browsers; a session gets a process of its own, so that a
client attached over CDP sees and touches only that session's targets. The agent
itself drives it through Playwright over the same DevTools port (the browser's
default context, whose pages the attached client sees too). Every request goes
through the session's egress listener, given at launch.
"""

import asyncio
import contextlib
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, CDPSession, Page, Playwright
from playwright.async_api import Error as PlaywrightError

from farm_agent.browser.chromium import (
    CHROMIUM_FLAGS,
    MAX_BROWSER_TMPDIR_CHARS,
    QUIET_FLAGS,
    feature_flags,
)
from farm_agent.browser.temp_dirs import TempDirs
from farm_agent.child_process import ChildProcess, start_child
from farm_agent.errors import TaskFailure
from farm_agent.sessions.browser_process import end_process
from farm_agent.sessions.no_downloads import refuse_default_downloads
from farm_core.cancel import Interrupted, unless_set
from farm_core.task_errors import ErrorCode

log = logging.getLogger(__name__)

# A full Chromium keeps its omnibox popups as WebUI pages (chrome://omnibox-popup…,
# `browser_ui` targets with chrome.send): none is made for a client to reach. The CDP
# filter hides such targets anyway (cdp_targets.py).
SESSION_DISABLED_FEATURES = ("WebUIOmniboxPopup", "WebUIOmniboxAimPopup")
# What Playwright's own launch adds for automation; the session's browser is
# launched by the agent, so it asks for them itself.
AUTOMATION_FLAGS: tuple[str, ...] = (
    "--headless",
    "--hide-scrollbars",
    "--mute-audio",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    # A page restored from the back/forward cache sends no request and fires no load
    # event: a `back` step would wait for one until its time ran out.
    "--disable-back-forward-cache",
    "--disable-renderer-backgrounding",
    "--disable-ipc-flooding-protection",
    "--disable-hang-monitor",
    "--disable-breakpad",
    "--disable-extensions",
    "--no-default-browser-check",
    "--force-color-profile=srgb",
    "--remote-debugging-address=127.0.0.1",
    # Nothing the browser asks for of its own (autofill queries, field trials…) goes out
    # through the session's egress listener: only what its pages ask for.
    *QUIET_FLAGS,
    *feature_flags(disabled=SESSION_DISABLED_FEATURES),
)
PORT_FILE = "DevToolsActivePort"
LISTENING_LINE = re.compile(
    r"DevTools listening on ws://[^/\s]+:(?P<port>\d+)(?P<path>/devtools/browser/[\w-]+)"
)
DENY_DOWNLOADS = {"behavior": "deny", "eventsEnabled": True}
"""Downloads refused, their start and end still announced (Playwright hears `canceled`)."""
PORT_FILE_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class LaunchOptions:
    """How to start one session's browser."""

    chromium_path: Path
    # The session's own folder: its profile and its files, removed on close.
    folder: Path
    # Flags that send every request through the session's egress listener.
    proxy_arguments: tuple[str, ...]
    # Makes (recorded) the browser's TMPDIR when the folder is too deep to hold it.
    temp_dirs: TempDirs
    window_width: int = 1280
    window_height: int = 800
    user_agent: str = ""
    extra_arguments: tuple[str, ...] = ()
    # The DevTools port, guarded from pages before the browser listens; 0: Chromium's pick.
    debug_port: int = 0
    start_timeout_seconds: float = 20.0
    close_timeout_seconds: float = 5.0


class SessionBrowser:
    """A running session browser: its process, its DevTools endpoint, Playwright's view of it."""

    def __init__(
        self,
        options: LaunchOptions,
        process: ChildProcess,
        debug_port: int,
        browser_path: str,
        browser: Browser,
        temp_dir: Path,
        downloads_cdp: CDPSession,
    ) -> None:
        self.options = options
        self._temp_dir = temp_dir
        self.process = process
        self.debug_port = debug_port
        self._browser_path = browser_path
        self.browser = browser
        # The page a `tabs` select chose; a page opened later (a pop-up) takes over.
        self.selected: Page | None = None
        # Set once Playwright's connection to the browser ends (a crash, a killed process).
        self.gone = asyncio.Event()
        browser.on("disconnected", lambda _: self._forget_pages())
        # The browser-level CDP session whose setting refuses downloads (_refuse_downloads).
        self._downloads_cdp = downloads_cdp
        # Each commanded page's CDP session with the Page domain on (openings.py), kept for
        # the page's life: detaching one makes Chromium dismiss a dialog the page shows.
        self._window_watches: dict[Page, CDPSession] = {}

    @property
    def cdp_endpoint(self) -> str:
        """The browser's own DevTools WebSocket (on the agent's loopback)."""
        return f"ws://127.0.0.1:{self.debug_port}{self._browser_path}"

    @property
    def context(self) -> BrowserContext:
        """The default context, the one attached clients see; BROWSER_CRASHED once closed."""
        if contexts := self.browser.contexts:
            return contexts[0]
        raise TaskFailure(ErrorCode.BROWSER_CRASHED, "the session's browser is closed")

    @property
    def alive(self) -> bool:
        """Whether the process runs and Playwright is still connected."""
        return self.process.returncode is None and self.browser.is_connected()

    def open_pages(self) -> list[Page]:
        """The default context's open pages, the oldest first."""
        return [page for page in self.context.pages if not page.is_closed()]

    def current_page(self) -> Page | None:
        """The selected page while it is open, else the newest; None when all are closed."""
        pages = self.open_pages()
        if self.selected is not None and self.selected in pages:
            return self.selected
        return pages[-1] if pages else None

    async def page(self) -> Page:
        """The current page, a new one if every page was closed."""
        page = self.current_page()
        if page is None:
            page = await self.new_page()
        return page

    async def new_page(self) -> Page:
        """A new page in the default context; BROWSER_CRASHED at once if the browser goes away.

        Playwright never answers a page still opening when its browser disconnects: the
        command would wait out its whole time.
        """
        try:
            return await unless_set(self.context.new_page(), self.gone, "a session's new page")
        except Interrupted:
            raise TaskFailure(
                ErrorCode.BROWSER_CRASHED,
                "the session's browser went away (its process crashed or was killed)",
            ) from None

    async def window_watch(self, page: Page) -> CDPSession:
        """`page`'s CDP session with the Page domain on, made on first call, dropped as it closes.

        Callers take turns (a session runs one command at a time).
        """
        cdp = self._window_watches.get(page)
        if cdp is not None:
            return cdp
        cdp = await self.context.new_cdp_session(page)
        try:
            await cdp.send("Page.enable")
        except PlaywrightError:
            with contextlib.suppress(PlaywrightError):
                await cdp.detach()
            raise
        if not page.is_closed():
            # The CDP session ends with the page's target; only the entry is left to drop.
            self._window_watches[page] = cdp
            page.once("close", self._forget_page)
        return cdp

    def watched_pages(self) -> list[Page]:
        """The pages that hold a CDP session of `window_watch`."""
        return list(self._window_watches)

    async def refuse_downloads(self) -> None:
        """Refuses downloads again, in every context: a client's connection that set one resets it.

        Chromium puts back its default (downloads saved) for each context the ending
        connection set a behavior for: the default one, and those clients made and left
        behind (the CDP filter has them denied as they are made, `cdp_targets.py`).
        Raises PlaywrightError when the browser is gone (`alive` is then false), or when
        a context that still exists was not denied.
        """
        await self._downloads_cdp.send("Browser.setDownloadBehavior", DENY_DOWNLOADS)
        for context in await self._contexts_made():
            try:
                deny = {"behavior": "deny", "browserContextId": context}
                await self._downloads_cdp.send("Browser.setDownloadBehavior", deny)
            except PlaywrightError:
                # Disposed meanwhile (its client closed it, or it went with the client
                # that made it): nothing is left there to refuse.
                if context in await self._contexts_made():
                    raise

    async def _contexts_made(self) -> list[str]:
        """The ids of the contexts made over CDP (the default one is not among them)."""
        made = await self._downloads_cdp.send("Target.getBrowserContexts")
        return list(made.get("browserContextIds", []))

    def _forget_page(self, page: Page) -> None:
        self._window_watches.pop(page, None)

    def _forget_pages(self) -> None:
        self._window_watches.clear()
        self.gone.set()

    @classmethod
    async def launch(cls, playwright: Playwright, options: LaunchOptions) -> "SessionBrowser":
        """Starts Chromium, waits for its DevTools port and connects Playwright to it."""
        profile = options.folder / "profile"
        home = options.folder / "home"
        await asyncio.to_thread(_fresh_folders, profile, home)
        await asyncio.to_thread(refuse_default_downloads, profile)
        temp_dir = home
        if len(str(home)) > MAX_BROWSER_TMPDIR_CHARS:
            # Chromium's singleton socket path must fit a socket address.
            temp_dir = await asyncio.to_thread(options.temp_dirs.make, "farm-session-")
        arguments = [
            *CHROMIUM_FLAGS,
            *AUTOMATION_FLAGS,
            *options.proxy_arguments,
            f"--window-size={options.window_width},{options.window_height}",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={options.debug_port}",
            *([f"--user-agent={options.user_agent}"] if options.user_agent else []),
            *options.extra_arguments,
            "about:blank",
        ]
        log_file = await asyncio.to_thread(open, options.folder / "chromium.log", "wb")
        try:
            process = await start_child(
                [*_dying_with_the_agent(str(options.chromium_path)), *arguments],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                # What Chromium says goes to the session's folder, to explain a failed start.
                stderr=log_file,
                # Chromium keeps its NSS database and caches under HOME.
                env={**os.environ, "HOME": str(home), "TMPDIR": str(temp_dir)},
                start_new_session=True,
            )
        except BaseException as error:
            # Cancelled too: start_child ends the child of a cancelled call itself, but
            # the folders are ours.
            await asyncio.to_thread(_remove_folders, options, temp_dir)
            if not isinstance(error, OSError):
                raise
            message = f"cannot launch Chromium {options.chromium_path}: {error}"
            raise TaskFailure(ErrorCode.BROWSER_CRASHED, message) from error
        finally:
            # The browser holds its own copy of the file.
            log_file.close()
        try:
            async with asyncio.timeout(options.start_timeout_seconds):
                port, path = await _wait_for_port_file(
                    profile / PORT_FILE, process, options.folder / "chromium.log"
                )
                browser = await playwright.chromium.connect_over_cdp(f"ws://127.0.0.1:{port}{path}")
                downloads_cdp = await _refuse_downloads(browser)
        except BaseException as error:
            # Cancelled too (an agent stopping while a spare starts): no Chromium is left.
            await end_process(process, options.close_timeout_seconds)
            said = await asyncio.to_thread(_last_lines, options.folder / "chromium.log")
            await asyncio.to_thread(_remove_folders, options, temp_dir)
            if not isinstance(error, TimeoutError | PlaywrightError | TaskFailure):
                raise
            problem = (
                error.message
                if isinstance(error, TaskFailure)
                else f"the session's browser did not start within "
                f"{options.start_timeout_seconds:g} s: {error}"
            )
            log.warning("%s; Chromium said: %s", problem, said or "nothing")
            raise TaskFailure(ErrorCode.BROWSER_CRASHED, problem) from error
        return cls(options, process, port, path, browser, temp_dir, downloads_cdp)

    async def close(self) -> None:
        """Ends the browser (killed if it does not end in time) and removes its folder."""
        self._window_watches.clear()
        with contextlib.suppress(PlaywrightError):
            async with asyncio.timeout(self.options.close_timeout_seconds):
                await self.browser.close()
        await end_process(self.process, self.options.close_timeout_seconds)
        await asyncio.to_thread(_remove_folders, self.options, self._temp_dir)


# Run by sh in the process setpriv has just armed with the parent-death signal. An
# agent that died before setpriv's prctl would never send it, so the parent is checked
# after it: still the agent (whose death now kills us), or Chromium is not started.
PARENT_CHECK = '[ "$PPID" = "$1" ] || exit 1; shift; exec "$@"'


async def _refuse_downloads(browser: Browser) -> CDPSession:
    """Has the browser refuse downloads, as tasks' do; the pages still announce them.

    Playwright's own connection would accept them into a folder of the agent's. The
    CDP session stays attached: Chromium forgets the behavior its detaching session set.
    Its events keep Playwright hearing how a download ends (`canceled`).
    """
    cdp = await browser.new_browser_cdp_session()
    await cdp.send("Browser.setDownloadBehavior", DENY_DOWNLOADS)
    return cdp


def _dying_with_the_agent(chromium: str) -> list[str]:
    """The command that starts `chromium` killed when the agent dies, even by SIGKILL.

    A task's browser ends when Playwright's pipe to it closes; a session's browser,
    reached over a TCP port, would otherwise outlive an agent that was killed.
    util-linux's setpriv sets the parent-death signal and execs a shell that execs
    Chromium (same process) only if the agent is still its parent; Python's
    preexec_fn could do it too, but forking the agent's gRPC threads into a child
    that runs Python code aborts the child now and then.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        log.warning("setpriv (util-linux) is missing: a session's browser outlives a killed agent")
        return [chromium]
    return [
        *(setpriv, "--pdeathsig", "KILL", "--"),
        *("/bin/sh", "-c", PARENT_CHECK, "farm-session-browser", str(os.getpid()), chromium),
    ]


def _last_lines(path: Path, count: int = 5) -> str:
    """The last lines of a log file, joined; empty when it cannot be read."""
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-count:])
    except OSError:
        return ""


def _remove_folders(options: LaunchOptions, temp_dir: Path) -> None:
    """Removes the session's folder, and its TMPDIR when that is one of `temp_dirs`."""
    shutil.rmtree(options.folder, ignore_errors=True)
    if not temp_dir.is_relative_to(options.folder):
        options.temp_dirs.remove(temp_dir)


def _fresh_folders(*folders: Path) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)


async def _wait_for_port_file(
    port_file: Path, process: ChildProcess, log_file: Path
) -> tuple[int, str]:
    """The DevTools port and browser path, once Chromium listens.

    Chromium writes them to `port_file` only when it picked the port itself; for a
    port it was given, its log's "DevTools listening on ws://…" line names them.
    """
    while True:
        if process.returncode is not None:
            raise TaskFailure(
                ErrorCode.BROWSER_CRASHED,
                f"the session's browser exited at start with status {process.returncode}",
            )
        with contextlib.suppress(OSError, ValueError):
            lines = (await asyncio.to_thread(port_file.read_text)).splitlines()
            if len(lines) >= 2:
                return int(lines[0]), lines[1]
        with contextlib.suppress(OSError, ValueError):
            said = await asyncio.to_thread(log_file.read_text, errors="replace")
            if listening := LISTENING_LINE.search(said):
                return int(listening["port"]), listening["path"]
        await asyncio.sleep(PORT_FILE_POLL_SECONDS)
