"""Files the SDK writes for its caller: an artifact saved whole, or not at all."""

import contextlib
import uuid
from pathlib import Path


def write_whole(path: Path, data: bytes) -> None:
    """Writes `data` to the file `path`, all of it or nothing.

    The bytes go to a hidden file beside it, renamed over `path` once written: a write
    that fails (a full disk, an interruption) leaves no partial file, and a file that was
    at `path` as it was. The new file's mode follows the umask, as open() gives it.
    """
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        with partial.open("xb") as file:
            file.write(data)
        partial.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
