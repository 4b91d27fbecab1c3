"""One recording of a screencast into a video of a chosen format: start, stop, encode, discard.

A task records its page with one; a session records its screen with one for each
screencast a command starts. Frames go to the recording's own folder, the video
next to it; `discard` removes both.
"""

import asyncio
import shutil
from pathlib import Path

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import CapturedArtifact
from farm_agent.media.encoder import VideoFormat, video_type
from farm_agent.media.recorder import RecordingLimits, ScreenRecorder
from farm_agent.media.screencast import FrameSink, Screencast


class Recording:
    """A screencast's frames kept from `start` to `stop`, then encoded into a video artifact."""

    def __init__(
        self,
        screencast: Screencast,
        folder: Path,
        size: tuple[int, int],
        video_format: VideoFormat,
        limits: RecordingLimits,
    ) -> None:
        self._screencast = screencast
        self._folder = folder
        self.format = video_type(video_format).format
        width, height = size
        self._recorder = ScreenRecorder(folder / "frames", width, height, limits)
        # The one sink handed to the screencast, so that it can be taken back.
        self._sink: FrameSink = self._recorder.add
        self._started = False
        self._stopped = False

    @property
    def recording(self) -> bool:
        """Whether frames are being kept now."""
        return self._started and not self._stopped

    def status(self) -> tasks_pb2.ScreencastStatus:
        """Recording or not, the format, and the frames and seconds kept so far."""
        return tasks_pb2.ScreencastStatus(
            recording=self.recording,
            format=self.format,
            frames=self._recorder.frames,
            seconds=round(self._recorder.seconds, 3),
        )

    async def start(self) -> None:
        """Keeps the screencast's frames from now on, the screen as it is first."""
        if self._started:
            return
        self._started = True
        await self._screencast.record_to(self._sink)

    async def stop(self) -> None:
        """Keeps no more frames; the last one lasts until now."""
        if self._stopped:
            return
        self._stopped = True
        self._recorder.end()
        await self._screencast.stop_recording_to(self._sink)

    async def video(self, name: str) -> CapturedArtifact | None:
        """The frames encoded into an artifact named `name`; None when no frame was kept.

        Raises EncodingFailed (ffmpeg failed or took too long) or OSError.
        """
        await self.stop()
        kind = video_type(self.format)
        path = await self._recorder.encode(self._folder / f"video.{kind.extension}", self.format)
        if path is None:
            return None
        data = await asyncio.to_thread(path.read_bytes)
        return CapturedArtifact(name, tasks_pb2.ARTIFACT_KIND_VIDEO, kind.content_type, data)

    async def discard(self) -> None:
        """Stops, and removes the frames and the video."""
        await self.stop()
        await asyncio.to_thread(shutil.rmtree, self._folder, True)
