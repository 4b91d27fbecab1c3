"""The headers an artifact's content is served with."""

import datetime as dt

import pytest

from farm_storage.download import MAX_FILENAME_CHARS, content_headers, download_filename
from farm_storage.store import ArtifactRecord


def record(
    task_id: str = "task_01", name: str = "screenshot", content_type: str = "image/png"
) -> ArtifactRecord:
    return ArtifactRecord(
        id="art_1",
        tenant="acme",
        task_id=task_id,
        name=name,
        kind="ARTIFACT_KIND_SCREENSHOT",
        content_type=content_type,
        size_bytes=1,
        sha256="0" * 64,
        object_key="acme/art_1",
        create_time=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )


@pytest.mark.parametrize(
    ("content_type", "disposition"),
    [
        ("image/png", 'inline; filename="task_01-screenshot.png"'),
        ("image/jpeg", 'inline; filename="task_01-screenshot.jpg"'),
        ("application/pdf", 'attachment; filename="task_01-screenshot.pdf"'),
        ("text/html; charset=utf-8", 'attachment; filename="task_01-screenshot.html"'),
        ("TEXT/PLAIN; charset=utf-8", 'attachment; filename="task_01-screenshot.txt"'),
        ("application/x-unknown", 'attachment; filename="task_01-screenshot.bin"'),
        ("video/mp4", 'attachment; filename="task_01-screenshot.mp4"'),
        ("image/gif", 'attachment; filename="task_01-screenshot.gif"'),
    ],
)
def test_only_images_are_inline_and_the_name_has_the_types_extension(
    content_type: str, disposition: str
) -> None:
    headers = dict(content_headers(record(content_type=content_type)))
    assert headers["content-disposition"] == disposition
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; sandbox"


@pytest.mark.parametrize(
    ("task_id", "name", "filename"),
    [
        ("t1", 'a"b\r\nx: y', "t1-a_b_x_y.png"),
        ("../../etc", "passwd", "etc-passwd.png"),
        ("t1", "ünïcode name", "t1-_n_code_name.png"),
        ("", "", "artifact.png"),
    ],
)
def test_the_filename_keeps_only_safe_characters(task_id: str, name: str, filename: str) -> None:
    assert download_filename(record(task_id, name)) == filename


def test_the_filename_is_bounded() -> None:
    filename = download_filename(record("t" * 300, "n" * 300))
    assert len(filename) == MAX_FILENAME_CHARS and filename.endswith(".png")
