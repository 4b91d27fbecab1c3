"""What the benches share: progress lines, a local page to load, a farm of their own.

Each bench runs as a script (`.venv/bin/python bench/<name>.py`), so this module is
imported by its plain name from the bench's own folder.
"""

import argparse
import contextlib
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from farm_cli.launcher.config import FarmConfig, find_project_root
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.ports import FarmPorts

Number = TypeVar("Number", int, float)

Report = Callable[[str], None]


def progress_reporter(bench: str) -> Report:
    """Writes progress lines tagged `[bench]` on stderr, so stdout holds only the results."""

    def progress(line: str) -> None:
        print(f"[{bench}] {line}", file=sys.stderr, flush=True)

    return progress


def _page_handler(html: bytes, delay_seconds: float) -> type[BaseHTTPRequestHandler]:
    class PageHandler(BaseHTTPRequestHandler):
        """Answers every GET with the page, after the delay."""

        def do_GET(self) -> None:
            time.sleep(delay_seconds)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(html)))
                self.end_headers()
                self.wfile.write(html)
            except ConnectionError:
                pass  # The browser went away (its agent was killed, say).

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: one line per request would drown the progress and the results."""

    return PageHandler


@contextlib.contextmanager
def serve_page(html: bytes, path: str, delay_ms: int = 0, host: str = "127.0.0.1") -> Iterator[str]:
    """`html` on `host` at a free port, answering after `delay_ms`; yields its URL at `path`."""
    server = ThreadingHTTPServer((host, 0), _page_handler(html, delay_ms / 1000))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="bench-page", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}{path}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


BENCH_ENV = {
    # A bench measures the farm, not the per-key rate limiter (50 requests a second by default).
    "FARM_AUTH_RATE_LIMIT_PER_SECOND": "1000",
    "FARM_AUTH_RATE_LIMIT_BURST": "1000",
}


@contextlib.contextmanager
def local_farm(agents: int, bench: str, report: Report, **config: Any) -> Iterator[LocalFarm]:
    """A farm of the bench's own on free ports in a short temporary FARM_HOME, stopped after.

    Its agents may reach 127.0.0.0/8, where the bench's page is, and its key's rate
    limit is out of the way (BENCH_ENV); `config` sets more FarmConfig fields
    (service_env, added to BENCH_ENV; restart_policy).
    """
    home = Path(tempfile.mkdtemp(prefix=f"farm-{bench}-"))
    try:
        with LocalFarm(bench_config(home, agents, **config), report=report) as farm:
            yield farm
    finally:
        shutil.rmtree(home, ignore_errors=True)


def bench_config(home: Path, agents: int, **config: Any) -> FarmConfig:
    """A bench farm's FarmConfig: free ports, agents allowed to 127.0.0.0/8, BENCH_ENV.

    `home` should be short (Chromium's sockets live under FARM_HOME/agents/<id>/tmp);
    `config` sets more FarmConfig fields, its service_env added to BENCH_ENV.
    """
    config["service_env"] = {**BENCH_ENV, **config.get("service_env", {})}
    config.setdefault("agent_allow", "127.0.0.0/8")
    return FarmConfig(
        root=find_project_root(Path(__file__).parent),
        home=home,
        ports=FarmPorts.free(),
        agents=agents,
        **config,
    )


def bounded(kind: Callable[[str], Number], low: Number, high: Number) -> Callable[[str], Number]:
    """An argparse type: `kind` of the text, refused unless between `low` and `high`."""

    def parse(text: str) -> Number:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {text}")
        return value

    return parse
