"""A session's screencast frames become a WebM video that ffmpeg can decode."""

import asyncio
import struct
import subprocess
from pathlib import Path

import imageio_ffmpeg

from farm_agent.sessions.recorder import (
    LAST_FRAME_SECONDS,
    MIN_FRAME_SECONDS,
    ScreenRecorder,
    concat_playlist,
)

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def jpeg_frames(folder: Path, count: int, size: str = "320x240") -> list[bytes]:
    """Distinct JPEG frames from ffmpeg's test pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    pattern = folder / "source-%02d.jpg"
    subprocess.run(
        [
            FFMPEG,
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size={size}:rate=1",
            "-frames:v",
            str(count),
            str(pattern),
        ],
        check=True,
    )
    return [(folder / f"source-{index:02d}.jpg").read_bytes() for index in range(1, count + 1)]


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_each_frame_lasts_until_the_next_and_the_last_one_second() -> None:
    playlist = concat_playlist([10.0, 10.5, 10.5, 12.0]).splitlines()
    assert playlist[0] == "file 'frame-000000.jpg'"
    durations = [float(line.split()[1]) for line in playlist if line.startswith("duration")]
    assert durations == [0.5, MIN_FRAME_SECONDS, 1.5, LAST_FRAME_SECONDS]
    assert playlist[-1] == "file 'frame-000003.jpg'"


def test_frames_past_the_bound_are_dropped(tmp_path: Path) -> None:
    recorder = ScreenRecorder(tmp_path / "frames", 320, 240, max_frames=2)
    for index in range(4):
        recorder.add(b"jpeg", float(index))
    assert recorder.frames == 2
    recorder.discard()
    assert not (tmp_path / "frames").exists()


def test_frames_of_any_size_make_a_video_of_the_viewports_size(tmp_path: Path) -> None:
    recorder = ScreenRecorder(tmp_path / "frames", 321, 241)
    # A first frame drawn before the viewport took effect, then frames of the viewport.
    recorder.add(jpeg_frames(tmp_path / "early", 1, "640x200")[0], 99.0)
    for index, jpeg in enumerate(jpeg_frames(tmp_path, 3, "321x241")):
        recorder.add(jpeg, 100.0 + index * 0.5)
    video = asyncio.run(recorder.encode(tmp_path / "session.webm"))
    assert video is not None
    assert video.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a Matroska/WebM file
    first = subprocess.run(
        [
            FFMPEG,
            "-loglevel",
            "error",
            "-i",
            str(video),
            "-frames:v",
            "1",
            "-f",
            "image2",
            "-c:v",
            "png",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    assert png_size(first) == (320, 240)


def test_no_frames_make_no_video(tmp_path: Path) -> None:
    recorder = ScreenRecorder(tmp_path / "frames", 320, 240)
    assert asyncio.run(recorder.encode(tmp_path / "v.webm")) is None
