"""An artifact opened from the console, in real Chromium, with the console's artifact headers.

Nothing in an artifact may run as the console, but what it is still shows: a session's
recording (video/webm) plays on its own page. Served here by a real HTTP server (the
browser's own checks apply as to the console's answer) with `artifact_headers`.
"""

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from farm_agent.browser.chromium import CHROMIUM_FLAGS
from farm_console.security import artifact_headers
from farm_core.free_ports import free_port

pytestmark = pytest.mark.integration

PAGE = "<html><body><h1 id='shown'>page</h1><script>document.title = 'ran'</script></body></html>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=Path("/usr/bin/chromium"), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A second of video/webm (VP8), made by the ffmpeg the agent encodes recordings with."""
    video = tmp_path_factory.mktemp("video") / "test.webm"
    # Loaded here only: the agent's dependency (about 6 MiB), not the console's.
    import imageio_ffmpeg

    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            *("-hide_banner", "-loglevel", "error", "-f", "lavfi"),
            *("-i", "testsrc=size=320x240:rate=5", "-t", "1", "-c:v", "libvpx"),
            *("-f", "webm", str(video)),
        ],
        check=True,
        timeout=60,
    )
    return video.read_bytes()


@pytest.fixture(scope="module")
def artifacts(recording: bytes) -> Iterator[str]:
    """The base URL of a server answering /video and /page as the console's artifact page."""
    bodies = {"/video": ("video/webm", recording), "/page": ("text/html", PAGE.encode())}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            content_type, body = bodies[self.path]
            self.send_response(200)
            for name, value in artifact_headers(content_type).items():
                self.send_header(name, value)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_video_artifact_plays_on_its_own_page(browser: Browser, artifacts: str) -> None:
    # Sandboxed, the video's own page had an opaque origin and Chromium refused it the
    # video (CORS, origin 'null'): a session's recording showed an empty player.
    page = browser.new_page()
    said: list[str] = []
    page.on("console", lambda message: said.append(message.text))
    page.goto(f"{artifacts}/video")
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.readyState >= 1; }",
        timeout=10_000,
    )
    assert page.evaluate("document.querySelector('video').videoWidth") == 320
    assert said == []
    page.close()


def test_a_page_artifact_shows_but_runs_nothing(browser: Browser, artifacts: str) -> None:
    page = browser.new_page()
    page.goto(f"{artifacts}/page")
    assert page.inner_text("#shown") == "page"
    assert page.title() != "ran"
    assert page.evaluate("window.origin") == "null"
    page.close()
