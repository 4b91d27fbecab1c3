"""A task's page recorded from its navigation to the end of its action, when its spec asks.

The frames go to a folder of the task's own in the agent's scratch directory,
removed when the task ends however it ends. The video is encoded after the task's
page has closed, outside the task's time limit (ffmpeg has a limit of its own),
and joins the task's other artifacts as `screencast`. A video that cannot be made
does not fail the task, whose page did what was asked: it is logged, and the
task succeeds without it.
"""

import logging
import uuid
from collections.abc import Mapping
from pathlib import Path

from playwright.async_api import Page

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import Capture
from farm_agent.media.encoder import EncodingFailed
from farm_agent.media.recorder import RecordingLimits
from farm_agent.media.recording import Recording
from farm_agent.media.screencast import Screencast

log = logging.getLogger(__name__)

ARTIFACT_NAME = "screencast"


class TaskScreencast:
    """The recording of one task's page; does nothing for a spec without `screencast`."""

    def __init__(
        self,
        spec: tasks_pb2.TaskSpec,
        viewport: Mapping[str, int],
        scratch_dir: Path,
        limits: RecordingLimits,
    ) -> None:
        self._wanted = spec.HasField("screencast")
        self._format = spec.screencast.format
        self._size = (int(viewport["width"]), int(viewport["height"]))
        self._folder = scratch_dir / "screencasts" / uuid.uuid4().hex
        self._limits = limits
        self._screencast: Screencast | None = None
        self._recording: Recording | None = None

    async def follow(self, page: Page) -> None:
        """Starts recording `page`, before the task navigates."""
        if not self._wanted:
            return
        screencast = Screencast(*self._size)
        try:
            recording = Recording(screencast, self._folder, self._size, self._format, self._limits)
        except EncodingFailed as error:
            log.warning("a task's screencast is not recorded: %s", error)
            return
        self._screencast, self._recording = screencast, recording
        await screencast.follow(page)
        await recording.start()

    async def stop(self) -> None:
        """Ends the recording: the action is done."""
        if self._recording is not None:
            await self._recording.stop()
        if self._screencast is not None:
            await self._screencast.close()

    async def add_video(self, capture: Capture) -> Capture:
        """`capture` with the video among its artifacts, when one could be made."""
        if self._recording is None:
            return capture
        try:
            video = await self._recording.video(ARTIFACT_NAME)
        except (EncodingFailed, OSError) as error:
            log.warning("a task's screencast was not stored: %s", error)
            return capture
        if video is None:
            log.warning("a task's screencast was not stored: Chromium sent no frame")
        else:
            capture.artifacts.append(video)
        return capture

    async def discard(self) -> None:
        """Removes the frames and the video."""
        if self._screencast is not None:
            await self._screencast.close()
        if self._recording is not None:
            await self._recording.discard()
