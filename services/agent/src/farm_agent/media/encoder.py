"""Frames listed in an ffmpeg concat playlist → one video file of a VideoFormat.

The encoder is the ffmpeg binary that the `imageio-ffmpeg` package carries.
WebM (VP8) and MP4 (H.264, yuv420p, its index at the front so that it plays while
it downloads) keep each frame's own time. An animated GIF is drawn at most
GIF_MAX_FPS frames a second and GIF_MAX_WIDTH pixels wide, in a palette made from
its own frames. Every frame is fitted into the video's size, never stretched.
"""

import asyncio
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeAlias

from farm.tasks.v1 import tasks_pb2
from farm_agent.child_process import start_child
from farm_core.task_defaults import DEFAULT_VIDEO_FORMAT

VideoFormat: TypeAlias = "tasks_pb2.VideoFormat.ValueType"

GIF_MAX_FPS = 10
GIF_MAX_WIDTH = 640
# Screencast frames are full-range JPEGs; players expect video in the limited range.
LIMITED_RANGE_YUV420P = "scale=out_range=tv,format=yuv420p"
ERROR_TAIL_CHARS = 500
"""How much of what ffmpeg said a failure keeps."""


class EncodingFailed(Exception):
    """ffmpeg could not encode the frames (or not in time)."""


@dataclass(frozen=True)
class VideoType:
    """What a VideoFormat's file is: its content type and file name extension."""

    format: VideoFormat
    content_type: str
    extension: str


VIDEO_TYPES: Mapping[VideoFormat, VideoType] = {
    tasks_pb2.VIDEO_FORMAT_WEBM: VideoType(tasks_pb2.VIDEO_FORMAT_WEBM, "video/webm", "webm"),
    tasks_pb2.VIDEO_FORMAT_MP4: VideoType(tasks_pb2.VIDEO_FORMAT_MP4, "video/mp4", "mp4"),
    tasks_pb2.VIDEO_FORMAT_GIF: VideoType(tasks_pb2.VIDEO_FORMAT_GIF, "image/gif", "gif"),
}


def video_type(video_format: VideoFormat) -> VideoType:
    """The type of `video_format`; the default one for VIDEO_FORMAT_UNSPECIFIED."""
    if video_format == tasks_pb2.VIDEO_FORMAT_UNSPECIFIED:
        video_format = DEFAULT_VIDEO_FORMAT
    known = VIDEO_TYPES.get(video_format)
    if known is None:
        raise EncodingFailed(f"format: no video format {video_format}")
    return known


@dataclass(frozen=True)
class VideoShape:
    """The video to make: its format, size, length and largest size in bytes."""

    format: VideoFormat
    width: int
    height: int
    seconds: float
    max_bytes: int


def video_shape(
    video_format: VideoFormat, width: int, height: int, seconds: float, max_bytes: int
) -> VideoShape:
    """The video for frames of this size: even sides, a GIF no wider than its bound."""
    chosen = video_type(video_format).format
    if chosen == tasks_pb2.VIDEO_FORMAT_GIF and width > GIF_MAX_WIDTH:
        height = round(height * GIF_MAX_WIDTH / width)
        width = GIF_MAX_WIDTH
    return VideoShape(chosen, max(2, width // 2 * 2), max(2, height // 2 * 2), seconds, max_bytes)


def ffmpeg_command(playlist: Path, video: Path, shape: VideoShape) -> list[str]:
    """The ffmpeg command line that encodes the playlist's frames into `video`.

    `-fs` ends the video (a complete file) once it reaches `shape.max_bytes`.
    """
    # Loaded with the first video, not with every agent (about 6 MiB).
    import imageio_ffmpeg

    width, height = shape.width, shape.height
    # A frame drawn before the viewport took effect, or of a page the client
    # resized, is scaled down and framed, not stretched.
    fit = (
        f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
        f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2"
    )
    chosen = video_type(shape.format).format
    if chosen == tasks_pb2.VIDEO_FORMAT_GIF:
        encoding = [
            "-vf",
            f"{fit},fps={GIF_MAX_FPS},split[frames][again];"
            "[again]palettegen=stats_mode=full[palette];"
            "[frames][palette]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle",
            "-loop",
            "0",
            # The fps filter shows the repeated last frame for a second more: cut it at the end.
            "-t",
            f"{shape.seconds:.3f}",
            "-f",
            "gif",
        ]
    elif chosen == tasks_pb2.VIDEO_FORMAT_MP4:
        encoding = [
            "-vf",
            f"{fit},{LIMITED_RANGE_YUV420P}",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "28",
            # No B-frames: with them the MP4's stated duration leaves out the last frame's.
            "-bf",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ]
    else:
        encoding = [
            "-vf",
            f"{fit},{LIMITED_RANGE_YUV420P}",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libvpx",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "1M",
            # A cluster a second: the muxer writes (and `-fs` sees) the video as it goes.
            "-cluster_time_limit",
            "1000",
            "-f",
            "webm",
        ]
    return [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        str(playlist),
        *encoding,
        "-fs",
        str(shape.max_bytes),
        str(video),
    ]


async def encode(command: list[str], timeout_seconds: float) -> None:
    """Runs ffmpeg's `command`; EncodingFailed when it fails or takes longer than the timeout."""
    # What ffmpeg says goes to a file, not a pipe: read once it has ended.
    with tempfile.TemporaryFile() as said_file:
        process = await start_child(command, stdout=subprocess.DEVNULL, stderr=said_file)
        try:
            async with asyncio.timeout(timeout_seconds):
                await process.wait()
        except TimeoutError:
            raise EncodingFailed(f"ffmpeg did not finish within {timeout_seconds:g} s") from None
        finally:
            # Timed out, or the task or the agent stopped: no ffmpeg is left behind.
            if process.returncode is None:
                process.kill()
                await process.wait()
        if process.returncode != 0:
            said = await asyncio.to_thread(_tail, said_file)
            raise EncodingFailed(f"ffmpeg failed: {said}")


def _tail(said_file: IO[bytes]) -> str:
    """The last ERROR_TAIL_CHARS of what ffmpeg wrote to `said_file`."""
    said_file.seek(0)
    return said_file.read().decode(errors="replace")[-ERROR_TAIL_CHARS:]
