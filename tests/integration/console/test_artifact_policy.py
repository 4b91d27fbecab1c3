"""An artifact opened from the console, in real Chromium, under the console's artifact policy.

The policy sandboxes the artifact (nothing in it runs as the console), but what it is
still shows: a session's recording (video/webm) plays. Served here by route, with the
headers the console's artifact page gives it.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route, sync_playwright

from farm_agent.browser.chromium import CHROMIUM_FLAGS
from farm_console.security import ARTIFACT_POLICY

pytestmark = pytest.mark.integration

ARTIFACT_URL = "http://127.0.0.1:9/console/artifacts/art_video"


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


def test_a_video_artifact_plays_under_the_artifact_policy(
    browser: Browser, recording: bytes
) -> None:
    # default-src 'none' with no media-src blocked the video of its own page: a
    # session's recording opened from the console showed an empty player.
    page = browser.new_page()
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text))

    def serve(route: Route) -> None:
        headers = {"content-type": "video/webm", "content-security-policy": ARTIFACT_POLICY}
        route.fulfill(status=200, headers=headers, body=recording)

    page.route(ARTIFACT_URL, serve)
    page.goto(ARTIFACT_URL)
    page.wait_for_function(
        "() => { const v = document.querySelector('video'); return v && v.readyState >= 1; }",
        timeout=10_000,
    )
    assert page.evaluate("document.querySelector('video').videoWidth") == 320
    assert blocked == []
    page.close()
