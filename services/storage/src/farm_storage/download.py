"""The response headers an artifact's content is served with: type, nosniff, disposition.

Artifacts hold what pages produced (HTML, text, images, PDFs) and are served from
the farm's own origin, so a browser must never run them as the farm's pages: HTML
and anything unknown are attachments, only images are shown inline, the type is
never sniffed, and the sandbox policy denies scripts even to what is shown.
"""

import re
from collections.abc import Mapping, Sequence

from farm_storage.store import ArtifactRecord

# Shown inline by a browser; every other type is a download.
INLINE_TYPES = frozenset({"image/png", "image/jpeg"})
# A file name extension for each content type the agents upload.
EXTENSIONS: Mapping[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "application/pdf": "pdf",
    "text/html": "html",
    "text/plain": "txt",
    "application/json": "json",
    "video/webm": "webm",
    "video/mp4": "mp4",
    "image/gif": "gif",
}
MAX_FILENAME_CHARS = 200
CONTENT_SECURITY_POLICY = "default-src 'none'; sandbox"
_UNSAFE_FILENAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def media_type(content_type: str) -> str:
    """The content type without parameters, lower case ('text/html; charset=utf-8': 'text/html')."""
    return content_type.split(";", 1)[0].strip().lower()


def download_filename(record: ArtifactRecord) -> str:
    """<task>-<name>.<ext> with only letters, digits, '.', '_' and '-' (safe in any header)."""
    extension = EXTENSIONS.get(media_type(record.content_type), "bin")
    stem = _UNSAFE_FILENAME_CHARS.sub("_", f"{record.task_id}-{record.name}").strip("._-")
    stem = stem[: MAX_FILENAME_CHARS - len(extension) - 1] or "artifact"
    return f"{stem}.{extension}"


def content_headers(record: ArtifactRecord) -> Sequence[tuple[str, str]]:
    """The headers, sent as gRPC initial metadata: Envoy's transcoder passes them on over HTTP."""
    disposition = "inline" if media_type(record.content_type) in INLINE_TYPES else "attachment"
    return (
        ("x-content-type-options", "nosniff"),
        ("content-disposition", f'{disposition}; filename="{download_filename(record)}"'),
        ("content-security-policy", CONTENT_SECURITY_POLICY),
    )
