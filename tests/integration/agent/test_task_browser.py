"""Task browsers: Chromium's headless shell in one process, at the same pixels as Chromium."""

import asyncio
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops
from playwright.async_api import Browser, Playwright, async_playwright

from farm_agent.browser.chromium import CHROMIUM_FLAGS, TASK_BROWSER_FLAGS
from farm_agent.browser.pool import BrowserPool
from farm_agent.metrics import process_tree
from farm_agent.settings import AgentSettings
from tests.integration.agent.conftest import CHROMIUM, HAVE_CHROMIUM, SettingsFactory
from tests.pages import Site

HEADLESS_SHELL = AgentSettings.model_fields["headless_shell_path"].default
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (HAVE_CHROMIUM and HEADLESS_SHELL.exists()),
        reason="needs Debian's chromium and chromium-headless-shell",
    ),
]
# Text in several fonts and scripts, form controls, gradients, shadows, transforms,
# filters, SVG and canvas: what a change of browser or compositor would show.
RICH_PAGE = """<!doctype html><html><body style="font-family:serif">
<h1 style="font-family:sans-serif">Héllo wörld — ✓ 日本語</h1>
<p style="font:13px monospace">monospace 0123456789</p>
<div style="width:300px;height:80px;background:linear-gradient(45deg,red,blue);
  border-radius:20px;box-shadow:5px 5px 10px #000;transform:rotate(3deg)"></div>
<svg width=200 height=100><circle cx=50 cy=50 r=40 fill=green stroke=black stroke-width=3 />
  <text x=100 y=50>SVG</text></svg>
<canvas id=c width=200 height=100></canvas>
<script>const x = document.getElementById("c").getContext("2d"); x.fillStyle = "orange";
  x.beginPath(); x.arc(100, 50, 40, 0, 6.28); x.fill(); x.font = "20px sans-serif";
  x.fillText("canvas", 60, 55);</script>
<input type=text value="input"><button>Button</button><select><option>Option</option></select>
<input type=checkbox checked><input type=range>
<div style="opacity:.5;filter:blur(2px);background:purple;width:100px;height:40px"></div>
<div style="height:1500px;background:repeating-linear-gradient(#fff,#ccc 50px)"></div>
</body></html>"""


@pytest.fixture(scope="module")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as started:
        yield started


async def shots(browser: Browser, urls: list[str]) -> list[bytes]:
    """Full-page PNGs of `urls` at device scale 1 and 2."""
    found = []
    for url in urls:
        for scale in (1, 2):
            context = await browser.new_context(
                viewport={"width": 1280, "height": 720}, device_scale_factor=scale
            )
            page = await context.new_page()
            await page.goto(url)
            found.append(await page.screenshot(full_page=True))
            await context.close()
    return found


async def test_a_task_browser_renders_the_same_pixels_as_chromium(
    playwright: Playwright, site: Site
) -> None:
    urls = [site.url("/page"), site.url("/widgets"), "data:text/html," + RICH_PAGE]
    # The two browsers start and take their shots side by side.
    chromium, shell = await asyncio.gather(
        playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_FLAGS)
        ),
        playwright.chromium.launch(
            executable_path=HEADLESS_SHELL,
            headless=True,
            args=[*CHROMIUM_FLAGS, *TASK_BROWSER_FLAGS],
        ),
    )
    try:
        expected, got = await asyncio.gather(shots(chromium, urls), shots(shell, urls))
    finally:
        await chromium.close()
        await shell.close()
    for want, have in zip(expected, got, strict=True):
        assert ImageChops.difference(_image(want), _image(have)).getbbox() is None


def _image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGBA")


async def test_a_task_browser_is_the_headless_shell_in_one_process(
    tmp_path_factory: pytest.TempPathFactory, make_settings: SettingsFactory
) -> None:
    # A short FARM_HOME keeps Chromium's socket path under the scratch directory.
    # The shell's path is given: FARM_AGENT_HEADLESS_SHELL_PATH may turn it off around here.
    settings = make_settings(
        FARM_HOME=tmp_path_factory.mktemp("h"), min_browsers=1, headless_shell_path=HEADLESS_SHELL
    )
    pool = BrowserPool(settings)
    await pool.start()
    try:
        async with pool.new_context() as (_, context):
            page = await context.new_page()
            await page.goto("data:text/html,<p>hello</p>")
            kinds = set(_chromium_kinds())
    finally:
        await pool.close()
    # No GPU process, network or storage service, or zygotes: only the browser and the
    # pages' renderers.
    assert kinds == {"browser", "renderer"}


def _chromium_kinds() -> list[str]:
    """The --type of the headless shell under this test and of its children (browser: none)."""
    kinds = []
    for pid in process_tree(os.getpid()):
        arguments = _arguments(pid)
        if arguments[:1] == [str(HEADLESS_SHELL).encode()]:
            kinds += [_kind(_arguments(child)) for child in process_tree(pid)]
    return kinds


def _arguments(pid: int) -> list[bytes]:
    # Chromium's child processes rewrite their command line into one space-separated title.
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
    except OSError:
        return []


def _kind(arguments: list[bytes]) -> str:
    types = [a.removeprefix(b"--type=").decode() for a in arguments if a.startswith(b"--type=")]
    return types[0] if types else "browser"
