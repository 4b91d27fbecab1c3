"""Session latency: the farm's sessions through Envoy against bare Playwright, in one run.

Four measures, each over N rounds after a warm-up, p50 and p95 in milliseconds:

- open + attach + first page: CreateSession, `connect_over_cdp(cdpUrl)` through
  Envoy, `page.goto` of a small local page (the session is closed after the clock
  stops). Bare: a new context and page on a running browser, then the same goto.
  Measured twice: with a pause between rounds, so that the agent's spare browser is
  ready as it is for sessions that do not come back to back, and back to back, when
  each open starts its own Chromium.
- CDP round trip: `page.fill` + `page.evaluate` on the attached page. Bare: the same on
  a local page. Measured once the spare browser that the session's open set starting
  is up, with the farm's and bare rounds interleaved.
- RunSessionCommand: a small script command over HTTP/JSON through Envoy (scheduler,
  NATS, agent, page and back). Bare: `page.evaluate` of the same script. Interleaved
  with bare in the same way.
- session life: create, one command (go to the page), close. Bare: new context, goto,
  close.

Unless `--farm-url` and `--key` are given it starts its own farm on free ports.

    .venv/bin/python bench/sessions.py --n 30
"""

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, Playwright, async_playwright

from farm_agent.browser.chromium import CHROMIUM_FLAGS

sys.path.insert(0, str(Path(__file__).parent))
from harness import local_farm, progress_reporter, serve_page

progress = progress_reporter("sessions")
CHROMIUM_PATH = Path("/usr/bin/chromium")
WARMUP = 3
SMALL_SCRIPT = "() => document.title.length"
SPARE_READY_SECONDS = 2.0
"""The pause between opens that lets the agent start its next spare browser."""
SETTLE_SECONDS = 4.0
"""The pause before the steady-state measures: the spare browser that the session's
open set starting, and the browsers of the sessions closed before, are done with
the CPU, so that neither side is timed beside a Chromium start."""


@dataclass
class Timings:
    """One measure's latencies in milliseconds."""

    samples: list[float] = field(default_factory=list)

    def percentile(self, percent: int) -> float:
        """The `percent`th percentile (nearest rank)."""
        ordered = sorted(self.samples)
        rank = max(0, min(len(ordered) - 1, round(percent / 100 * len(ordered)) - 1))
        return ordered[rank]


async def timed(
    rounds: int, action: Callable[[], Awaitable[object]], pause_seconds: float = 0.0
) -> Timings:
    """Runs `action` WARMUP times unmeasured, then `rounds` times measured.

    An action may return a coroutine function: its cleanup, run after the clock stops.
    """
    timings = Timings()
    for round_number in range(WARMUP + rounds):
        await asyncio.sleep(pause_seconds)
        started = time.perf_counter()
        cleanup = await action()
        elapsed = (time.perf_counter() - started) * 1000
        if callable(cleanup):
            await cleanup()
        if round_number >= WARMUP:
            timings.samples.append(elapsed)
    return timings


async def timed_pair(
    rounds: int,
    farm_action: Callable[[], Awaitable[object]],
    bare_action: Callable[[], Awaitable[object]],
) -> tuple[Timings, Timings]:
    """Both actions WARMUP times unmeasured, then `rounds` times each, interleaved.

    The two alternate which goes first in each round, so that whatever else the
    machine is doing weighs on both sides alike.
    """
    farm, bare = Timings(), Timings()
    for round_number in range(WARMUP + rounds):
        pairs = [(farm_action, farm), (bare_action, bare)]
        for action, timings in pairs if round_number % 2 == 0 else reversed(pairs):
            started = time.perf_counter()
            await action()
            if round_number >= WARMUP:
                timings.samples.append((time.perf_counter() - started) * 1000)
    return farm, bare


class FarmSessions:
    """The farm's side: sessions through Envoy with one key."""

    def __init__(self, http: httpx.AsyncClient, playwright: Playwright, key: str, page_url: str):
        self.http = http
        self.playwright = playwright
        self.key = key
        self.page_url = page_url

    async def create(self) -> dict[str, Any]:
        response = await self.http.post("/v1/sessions", json={})
        response.raise_for_status()
        return dict(response.json())

    async def close(self, session_id: str) -> None:
        (await self.http.post(f"/v1/sessions/{session_id}:close")).raise_for_status()

    async def run(self, session_id: str, command: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(f"/v1/sessions/{session_id}:run", json=command)
        response.raise_for_status()
        return dict(response.json())

    @contextlib.asynccontextmanager
    async def attached(self, session: dict[str, Any]) -> AsyncIterator[Page]:
        headers = {"authorization": f"Bearer {self.key}"}
        browser = await self.playwright.chromium.connect_over_cdp(
            session["cdpUrl"], headers=headers
        )
        try:
            yield browser.contexts[0].pages[0]
        finally:
            await browser.close()

    async def open_attach_first_page(self) -> Callable[[], Awaitable[None]]:
        """Opens, attaches and loads a page; returns the cleanup (detach, close)."""
        session = await self.create()
        headers = {"authorization": f"Bearer {self.key}"}
        browser = await self.playwright.chromium.connect_over_cdp(
            session["cdpUrl"], headers=headers
        )
        await browser.contexts[0].pages[0].goto(self.page_url)

        async def cleanup() -> None:
            await browser.close()
            await self.close(session["id"])

        return cleanup

    async def life(self) -> None:
        session = await self.create()
        await self.run(session["id"], {"url": self.page_url})
        await self.close(session["id"])


async def bare_open_first_page(browser: Browser, url: str) -> Callable[[], Awaitable[None]]:
    """A new context and page on a running browser, then the page; returns the cleanup."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(url)
    return context.close


async def bare_life(browser: Browser, url: str) -> None:
    """A new context, the page, and the context closed."""
    close = await bare_open_first_page(browser, url)
    await close()


async def round_trip(page: Page) -> None:
    """One fill and one evaluate."""
    await page.fill("#q", "farm")
    await page.evaluate(SMALL_SCRIPT)


async def run(args: argparse.Namespace, farm_url: str, key: str, form_url: str) -> str:
    """Every measure both ways; the results as a Markdown table."""
    rows: list[tuple[str, Timings, Timings]] = []
    async with (
        async_playwright() as playwright,
        httpx.AsyncClient(
            base_url=farm_url, headers={"authorization": f"Bearer {key}"}, timeout=120
        ) as http,
    ):
        farm = FarmSessions(http, playwright, key, form_url)
        bare = await playwright.chromium.launch(
            executable_path=CHROMIUM_PATH, args=list(CHROMIUM_FLAGS), headless=True
        )
        try:
            progress("open + attach + first page")
            bare_open = await timed(args.n, lambda: bare_open_first_page(bare, form_url))
            rows.append(
                (
                    "open + attach + first page (spare ready)",
                    await timed(args.n, farm.open_attach_first_page, SPARE_READY_SECONDS),
                    bare_open,
                )
            )
            rows.append(
                (
                    "open + attach + first page (back to back)",
                    await timed(args.n, farm.open_attach_first_page),
                    bare_open,
                )
            )
            progress("CDP round trip (fill + evaluate)")
            session = await farm.create()
            try:
                bare_page = await bare.new_page()
                await bare_page.goto(form_url)
                async with farm.attached(session) as attached:
                    await attached.goto(form_url)
                    await asyncio.sleep(SETTLE_SECONDS)
                    farm_trip, bare_trip = await timed_pair(
                        args.n * 5, lambda: round_trip(attached), lambda: round_trip(bare_page)
                    )
                rows.append(("CDP round trip (fill + evaluate)", farm_trip, bare_trip))
                progress("RunSessionCommand (small script)")
                command = {"script": {"source": SMALL_SCRIPT}}
                farm_run, bare_run = await timed_pair(
                    args.n * 5,
                    lambda: _run(farm, session["id"], command),
                    lambda: _evaluate(bare_page),
                )
                rows.append(("RunSessionCommand, small script", farm_run, bare_run))
            finally:
                await farm.close(session["id"])
            progress("session life: create, one command, close")
            rows.append(
                (
                    "create → first command → close",
                    await timed(args.n, farm.life),
                    await timed(args.n, lambda: bare_life(bare, form_url)),
                )
            )
        finally:
            await bare.close()
    return table(rows)


async def _run(farm: FarmSessions, session_id: str, command: dict[str, Any]) -> None:
    await farm.run(session_id, command)


async def _evaluate(page: Page) -> None:
    await page.evaluate(SMALL_SCRIPT)


def table(rows: list[tuple[str, Timings, Timings]]) -> str:
    """The measures as a Markdown table, farm next to bare Playwright."""
    lines = [
        "| measure | farm p50 ms | farm p95 ms | bare p50 ms | bare p95 ms | farm/bare p50 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, farm, bare in rows:
        farm50, bare50 = farm.percentile(50), bare.percentile(50)
        lines.append(
            f"| {name} | {farm50:.1f} | {farm.percentile(95):.1f} | {bare50:.1f} | "
            f"{bare.percentile(95):.1f} | {farm50 / bare50:.2f}x |"
        )
    return "\n".join(lines)


FORM_PAGE = b"""<!doctype html><html><head><title>Bench form</title></head><body>
<input id="q"><p>A small page with one field.</p></body></html>"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--n", type=int, default=30, help="rounds per measure (default 30)")
    parser.add_argument("--farm-url", help="a running farm's Envoy (default: start one)")
    parser.add_argument("--key", help="an API key of that farm with the scope sessions")
    return parser.parse_args(argv)


@contextlib.contextmanager
def farm_and_key(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """The given farm, or one of its own (one agent) for the bench's length."""
    if args.farm_url and args.key:
        yield args.farm_url, args.key
        return
    with local_farm(1, "sessions", progress) as farm:
        yield farm.envoy_url, farm.admin_key


def main(argv: list[str] | None = None) -> None:
    """Runs the bench and prints its table."""
    args = parse_args(argv)
    with serve_page(FORM_PAGE, "/form") as form_url, farm_and_key(args) as (farm_url, key):
        print(asyncio.run(run(args, farm_url, key, form_url)))


if __name__ == "__main__":
    main()
