"""A session's screencasts, which its commands start and stop: one at a time, stored when it stops.

A screencast records the session's screen (its current page, as the live view
shows it) from the command that starts it to the end of the command that stops
it, apart from SessionSpec.record, which records the whole session. Its video is
stored under the session's id as `screencast-<n>` (the n-th of the session); a
session that closes while one runs stores it too. A video that cannot be made (no
frame, ffmpeg failed) is logged and not stored; the command still succeeds.
"""

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import CapturedArtifact
from farm_agent.media.encoder import EncodingFailed, VideoFormat
from farm_agent.media.recorder import RecordingLimits
from farm_agent.media.recording import Recording
from farm_agent.media.screencast import Screencast

log = logging.getLogger(__name__)

Store = Callable[[CapturedArtifact], Awaitable[tasks_pb2.ArtifactRef]]
"""Stores a video under the session; raises TaskFailure when storage refuses it."""


class SessionScreencasts:
    """The screencast a session's commands started, if one runs, and how the last one ended."""

    def __init__(
        self,
        session_id: str,
        screencast: Screencast,
        folder: Path,
        size: tuple[int, int],
        limits: RecordingLimits,
    ) -> None:
        self._session_id = session_id
        self._screencast = screencast
        # The session's folder: each screencast keeps its frames in a folder of its own there.
        self._folder = folder
        self._size = size
        self._limits = limits
        self._running: Recording | None = None
        self._started = 0
        self._last = tasks_pb2.ScreencastStatus()

    def status(self) -> tasks_pb2.ScreencastStatus:
        """The running screencast's status, or the last one's once it stopped."""
        if self._running is not None:
            return self._running.status()
        return tasks_pb2.ScreencastStatus(
            format=self._last.format, frames=self._last.frames, seconds=self._last.seconds
        )

    async def start(self, video_format: VideoFormat) -> None:
        """Starts recording the screen as it is now; a screencast running already goes on."""
        if self._running is not None:
            return
        number = self._started + 1
        folder = self._folder / f"screencast-{number}"
        recording = Recording(self._screencast, folder, self._size, video_format, self._limits)
        self._started, self._running = number, recording
        await recording.start()

    async def stop(self, store: Store) -> tasks_pb2.ArtifactRef | None:
        """Stops the running screencast and stores its video; None when none ran or no video came.

        Raises TaskFailure when storage refuses the video (the screencast is over all the same).
        """
        recording, self._running = self._running, None
        if recording is None:
            return None
        try:
            await recording.stop()
            self._last = recording.status()
            name = f"screencast-{self._started}"
            try:
                video = await recording.video(name)
            except (EncodingFailed, OSError) as error:
                log.warning("session %s: %s was not stored: %s", self._session_id, name, error)
                return None
            if video is None:
                log.warning(
                    "session %s: %s was not stored: Chromium sent no frame", self._session_id, name
                )
                return None
            return await store(video)
        finally:
            await recording.discard()
