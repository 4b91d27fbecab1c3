"""Chromium's temporary directories outside the agent's scratch directory, and their sweep.

Chromium binds a socket under its TMPDIR, whose path must fit a socket address; when
the scratch directory is too deep for that, a task browser's or a session browser's
TMPDIR is made in the system's temporary directory instead (/tmp, shared with every
other agent on the machine). A clean stop removes it; a killed agent cannot. So each
one is recorded first, in a record of its own beside the scratch directory (which is
cleared at every start), and the agent's next start removes the directories whose
recording run is gone. Nothing is removed that no record of this agent names, nor
anything a record names that is not a directory of this user's with a name the agent
gives.
"""

import contextlib
import json
import logging
import os
import shutil
import stat
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

# The names the agent gives: the pool's directory and a session browser's.
PREFIXES = ("farm-agent-", "farm-session-")
RECORD_SUFFIX = ".json"
NAME_TRIES = 10


@dataclass(frozen=True)
class Owner:
    """A process, told from a later one with the same pid by its start time."""

    pid: int
    started: float

    @classmethod
    def this_process(cls) -> "Owner":
        """The running process."""
        return cls(os.getpid(), psutil.Process().create_time())

    def runs(self) -> bool:
        """Whether this very process still runs (a zombie does not)."""
        try:
            process = psutil.Process(self.pid)
            return (
                process.create_time() == self.started and process.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False


@dataclass(frozen=True)
class Record:
    """A recorded directory and the process that made it."""

    path: Path
    owner: Owner


@dataclass(frozen=True)
class Swept:
    """What a sweep removed, and what it left because its owner runs."""

    paths: tuple[Path, ...] = ()
    bytes_removed: int = 0
    left_to_live_owners: int = 0


class TempDirs:
    """Makes recorded temporary directories, removes them, sweeps those of gone runs."""

    def __init__(
        self, records: Path, parent: Path | None = None, owner: Owner | None = None
    ) -> None:
        self.records = records
        # None: the system's temporary directory (TMPDIR, else /tmp), looked up at each make.
        self._parent = parent
        self._owner = owner or Owner.this_process()

    def make(self, prefix: str) -> Path:
        """A new directory `<tmp>/<prefix><random>` (mode 0700), recorded before it exists.

        Blocking: call it in a thread from the event loop.
        """
        if prefix not in PREFIXES:
            raise ValueError(f"prefix {prefix!r} is none of {PREFIXES}")
        parent = self._parent or Path(tempfile.gettempdir())
        self.records.mkdir(parents=True, exist_ok=True)
        for _ in range(NAME_TRIES):
            path = parent / f"{prefix}{uuid.uuid4().hex[:16]}"
            record = self._record_of(path)
            record.write_text(
                json.dumps(
                    {"path": str(path), "pid": self._owner.pid, "started": self._owner.started}
                )
            )
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                # Not ours: forget it before another name is tried.
                record.unlink(missing_ok=True)
                continue
            return path
        raise FileExistsError(f"no free name for a temporary directory in {parent}")

    def remove(self, path: Path) -> None:
        """Removes a directory `make` returned, then its record. Blocking."""
        shutil.rmtree(path, ignore_errors=True)
        self._record_of(path).unlink(missing_ok=True)

    def sweep(self) -> Swept:
        """Removes the recorded directories whose recording process is gone. Blocking.

        End the browsers that used them first: a running Chromium writes on.
        """
        removed: list[Path] = []
        total = 0
        left = 0
        records = sorted(self.records.glob(f"*{RECORD_SUFFIX}")) if self.records.is_dir() else []
        for record in records:
            entry = _read_record(record)
            if entry is not None and entry.owner.runs():
                left += 1
                continue
            if entry is not None and _made_by_the_agent(entry.path, record):
                size = _size_of(entry.path)
                shutil.rmtree(entry.path, ignore_errors=True)
                if not entry.path.exists():
                    removed.append(entry.path)
                    total += size
            record.unlink(missing_ok=True)
        swept = Swept(tuple(removed), total, left)
        if removed:
            log.warning(
                "removed %d temporary director%s (%d bytes) earlier runs of this agent left: %s",
                len(removed),
                "y" if len(removed) == 1 else "ies",
                total,
                ", ".join(str(path) for path in removed),
            )
        if left:
            log.info("left %d recorded temporary directory(ies) whose agent still runs", left)
        return swept

    def forget_records(self) -> None:
        """Removes the records' folder if no record is left in it."""
        with contextlib.suppress(OSError):
            self.records.rmdir()

    def _record_of(self, path: Path) -> Path:
        return self.records / f"{path.name}{RECORD_SUFFIX}"


def _read_record(record: Path) -> Record | None:
    """The directory and owner a record names; None for a record cut short or unreadable."""
    try:
        entry = json.loads(record.read_text())
        return Record(Path(entry["path"]), Owner(int(entry["pid"]), float(entry["started"])))
    except (OSError, ValueError, KeyError, TypeError) as error:
        log.warning("temporary directory record %s is unreadable, dropped: %s", record, error)
        return None


def _made_by_the_agent(path: Path, record: Path) -> bool:
    """Whether `path` is what its record was written for: no link, a directory of this user's."""
    if not path.is_absolute() or record.name != f"{path.name}{RECORD_SUFFIX}":
        return False
    if not path.name.startswith(PREFIXES):
        return False
    try:
        status = path.lstat()
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(status.st_mode) and status.st_uid == os.getuid()


def _size_of(folder: Path) -> int:
    """Bytes of the files under `folder` (links not followed)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).lstat().st_size
    return total
