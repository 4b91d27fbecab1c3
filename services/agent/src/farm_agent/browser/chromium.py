"""How the farm starts Chromium: the flags its machines need, and finding a browser's process."""

import os
from pathlib import Path

from playwright.async_api import Browser, Playwright
from playwright.async_api import Error as PlaywrightError

from farm_agent.errors import TaskFailure
from farm_agent.metrics import process_tree
from farm_core.task_errors import ErrorCode

# Flags the farm's machines need: no sandbox (containers), no GPU, no /dev/shm (small in
# containers), and nothing that phones home or prompts on first run.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

# Chromium honours only the last --disable-features and the last --enable-features, so
# each browser gets one of each, built here, that repeats Playwright's own
# (playwright-core's chromiumSwitches.ts; tests/unit/agent/test_chromium_switches.py
# holds this list to the installed Playwright).
PLAYWRIGHT_DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "TcpPortRandomizationWin",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    "msForceBrowserSignIn",
    "msEdgeUpdateLaunchServicesPreferredVersion",
)
PLAYWRIGHT_ENABLED_FEATURES = ("CDPScreenshotNewSurface", "SkipListAccountsWithoutGaiaCookies")
# Requests a full Chromium makes of its own that Playwright's list lets through: the
# autofill server's field-type queries on each form (content-autofill.googleapis.com,
# with the page's form signatures), page translation, optimization hints and models.
QUIET_DISABLED_FEATURES = (
    "AutofillServerCommunication",
    "Translate",
    "OptimizationHintsFetching",
    "OptimizationGuideModelDownloading",
    "DialMediaRouteProvider",
)
# Every browser's switches that stop Chromium's own background requests (field trials,
# safe browsing's client-side model, default apps, metrics, domain reliability reports,
# hyperlink auditing pings, keychain prompts); the features above come with them.
QUIET_FLAGS: tuple[str, ...] = (
    "--disable-field-trial-config",
    "--disable-client-side-phishing-detection",
    "--disable-component-extensions-with-background-pages",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    "--no-pings",
    "--no-service-autorun",
    "--password-store=basic",
    "--use-mock-keychain",
    "--disable-search-engine-choice-screen",
)


def feature_flags(disabled: tuple[str, ...] = (), enabled: tuple[str, ...] = ()) -> list[str]:
    """The one --disable-features and --enable-features of a browser, Playwright's included."""
    return [
        "--disable-features="
        + ",".join((*PLAYWRIGHT_DISABLED_FEATURES, *QUIET_DISABLED_FEATURES, *disabled)),
        "--enable-features=" + ",".join((*PLAYWRIGHT_ENABLED_FEATURES, *enabled)),
    ]


# Task browsers only: one process instead of five (browser, GPU, network service, two
# zygotes) at the same pixels (docs/performance.md "Agent memory").
TASK_BROWSER_FLAGS: tuple[str, ...] = (
    "--in-process-gpu",
    "--no-zygote",
    *QUIET_FLAGS,
    *feature_flags(enabled=("NetworkServiceInProcess2",)),
)

# Chromium binds a unix socket at $TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket and
# aborts at launch when that path is longer than a socket address holds (107 bytes).
MAX_BROWSER_TMPDIR_CHARS = 107 - len("/org.chromium.Chromium.XXXXXX/SingletonSocket")
# A switch Chromium ignores, so that the agent can find a browser's process to kill it.
MARKER_SWITCH = "--farm-browser"


def task_browser_executable(headless_shell: Path, chromium: Path) -> Path:
    """The headless shell when it is installed (a third of Chromium's memory), else `chromium`."""
    return headless_shell if os.access(headless_shell, os.X_OK) else chromium


def task_browser_arguments(page_heap_mb: int) -> list[str]:
    """The flags of every task browser; the pool adds its egress proxy and marker switch."""
    arguments = [*CHROMIUM_FLAGS, *TASK_BROWSER_FLAGS]
    if page_heap_mb:
        arguments.append(f"--js-flags=--max-old-space-size={page_heap_mb}")
    return arguments


async def launch_task_browser(
    playwright: Playwright, executable: Path, arguments: list[str], tmp_dir: Path, scratch: Path
) -> Browser:
    """A headless task Chromium with `arguments`, its files under `scratch` and `tmp_dir`.

    A launch that fails is BROWSER_CRASHED, naming the executable.
    """
    try:
        return await playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=arguments,
            # Chromium keeps its NSS database and caches under HOME: keep them in scratch.
            env={**os.environ, "TMPDIR": str(tmp_dir), "HOME": str(scratch / "home")},
        )
    except PlaywrightError as error:
        raise TaskFailure(
            ErrorCode.BROWSER_CRASHED, f"cannot launch Chromium {executable}: {error.message}"
        ) from error


def browser_processes(marker: str) -> list[int]:
    """The agent's own Chromium processes launched with `marker` (the browser, not its children)."""
    switch = f"{MARKER_SWITCH}={marker}".encode()
    found = []
    for pid in process_tree(os.getpid()):
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if switch in arguments and b"--type=" not in arguments:
            found.append(pid)
    return found
