"""Videos for and from the farm, through the ffmpeg that `imageio-ffmpeg` carries.

`jpeg_frames` makes screencast-like frames; `decoded_frames` decodes a video's
frames small and grey, so that tests can tell whether they differ.
"""

import re
import struct
import subprocess
from pathlib import Path

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SAMPLE_WIDTH, SAMPLE_HEIGHT = 32, 18
"""The size frames are decoded at for comparing them."""
DISTINCT = 24.0
"""Frames whose grey levels differ by more than this on average are distinct (0 to 255)."""


def jpeg_frames(folder: Path, colors: list[str], size: str = "320x240") -> list[bytes]:
    """One JPEG frame of each color (an ffmpeg color name or 0xRRGGBB), `size` pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for index, color in enumerate(colors):
        path = folder / f"source-{index:02d}.jpg"
        ffmpeg("-f", "lavfi", "-i", f"color=c={color}:s={size}", "-frames:v", "1", str(path))
        frames.append(path.read_bytes())
    return frames


def noise_frames(folder: Path, count: int, size: str = "320x240") -> list[bytes]:
    """`count` JPEG frames of random noise, which no codec compresses well."""
    folder.mkdir(parents=True, exist_ok=True)
    pattern = folder / "noise-%02d.jpg"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"color=c=gray:s={size}:r=1,noise=alls=100:allf=t",
        "-frames:v",
        str(count),
        str(pattern),
    )
    return [(folder / f"noise-{index:02d}.jpg").read_bytes() for index in range(1, count + 1)]


def decoded_frames(video: Path) -> list[bytes]:
    """Every frame of `video` as it is stored, scaled to the sample size in 8-bit grey.

    Fails the test when ffmpeg cannot decode the video to its end.
    """
    raw = ffmpeg(
        "-xerror",
        "-i",
        str(video),
        "-vf",
        f"scale={SAMPLE_WIDTH}:{SAMPLE_HEIGHT},format=gray",
        "-f",
        "rawvideo",
        "-",
    )
    size = SAMPLE_WIDTH * SAMPLE_HEIGHT
    assert raw and len(raw) % size == 0, "the video decoded into no whole frame"
    return [raw[start : start + size] for start in range(0, len(raw), size)]


def brightness(frame: bytes) -> float:
    """A decoded frame's mean grey level, 0 to 255."""
    return sum(frame) / len(frame)


def difference(first: bytes, second: bytes) -> float:
    """The mean absolute difference of two decoded frames' grey levels, 0 to 255."""
    return sum(abs(a - b) for a, b in zip(first, second, strict=True)) / len(first)


def distinct_frames(frames: list[bytes]) -> list[bytes]:
    """The frames that differ from the one before them (the first one counts)."""
    kept = frames[:1]
    for frame in frames[1:]:
        if difference(kept[-1], frame) > DISTINCT:
            kept.append(frame)
    return kept


def first_frame_size(video: Path) -> tuple[int, int]:
    """The width and height of the video's first frame."""
    png = ffmpeg("-i", str(video), "-frames:v", "1", "-f", "image2", "-c:v", "png", "-")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def duration_seconds(video: Path) -> float:
    """The video's duration as its container states it."""
    said = described(video)
    found = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", said)
    assert found is not None, said
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def video_stream(video: Path) -> str:
    """How ffmpeg describes the video's stream, e.g. "h264 (High) (avc1 / …), yuv420p(…), …"."""
    said = described(video)
    found = re.search(r"Stream #0:0.*?: Video: (.*)", said)
    assert found is not None, said
    return found.group(1)


def described(video: Path) -> str:
    """What ffmpeg says of a video it is given without an output."""
    return subprocess.run(
        [FFMPEG, "-hide_banner", "-i", str(video)], capture_output=True, timeout=60
    ).stderr.decode()


def ffmpeg(*arguments: str) -> bytes:
    """Runs ffmpeg quietly; what it wrote to stdout."""
    return subprocess.run(
        [FFMPEG, "-hide_banner", "-loglevel", "error", *arguments],
        check=True,
        capture_output=True,
        timeout=120,
    ).stdout
