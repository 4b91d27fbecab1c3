"""Which services of the local farm use the tables `farm db` reads or migrates.

The local farm is the one `farm up` runs on this FARM_HOME: its pid files name its
processes. A running storage, auth or scheduler (replicas too) uses the same tables
when the database it was started with (its environment and working directory, read
as the service reads its settings: farm_core.schema.database_in_use) is the one the
command would use. A farm
on another FARM_HOME, or services started otherwise (compose, Kubernetes), are not
seen.
"""

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from farm_cli.launcher.pid_files import Life, PidFile, pid_files

# A process's database: (pid file stem, PID), or (service, 0) for the command's own.
_Key = tuple[str, int]
# What it is read with: the service, its environment, its working directory.
_Asked = tuple[str, Mapping[str, str], str | None]


@dataclass(frozen=True)
class DatabaseUser:
    """A running service of the local farm that uses a database the command would touch."""

    name: str  # its pid file's stem: scheduler, scheduler-2, storage, auth
    pid: int

    def __str__(self) -> str:
        return f"{self.name} (PID {self.pid})"


@dataclass(frozen=True)
class LocalFarmUsers:
    """The local farm's FARM_HOME and those of its services on the command's databases."""

    home: Path
    users: list[DatabaseUser]


def local_farm_users(services: Iterable[str]) -> LocalFarmUsers | None:
    """The local farm's services (of `services`) on the databases the command would use.

    None when no farm runs on this FARM_HOME (or there is no FARM_HOME to look in).
    """
    from browserfarm.local_farm import RUN_DIR, ProjectNotFound, farm_home

    try:
        home = farm_home(os.environ, Path.cwd())
    except ProjectNotFound:
        return None
    wanted = set(services)
    running = [
        entry
        for entry in pid_files(home / RUN_DIR)
        if isinstance(entry, PidFile) and _service(entry) in wanted and _runs(entry)
    ]
    if not running:
        return None
    # The command's own database for each service, and each running process's.
    asked: dict[tuple[str, int], _Asked] = {
        (service, 0): (service, dict(os.environ), None)
        for service in {_service(entry) for entry in running}
    }
    unreadable = []
    for entry in running:
        try:
            process = psutil.Process(entry.pid)
            asked[(entry.name, entry.pid)] = (_service(entry), process.environ(), process.cwd())
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            # Its database cannot be read: taken as ours, the cautious answer.
            unreadable.append(entry)
    databases = _databases(asked)
    users = [
        DatabaseUser(entry.name, entry.pid)
        for entry in running
        if entry in unreadable
        or databases[(entry.name, entry.pid)] in (None, databases[(_service(entry), 0)])
    ]
    return LocalFarmUsers(home, users) if users else None


def _runs(entry: PidFile) -> bool:
    try:
        return entry.life() is Life.RUNNING
    except FileNotFoundError:  # its process was stopped meanwhile
        return False


def _service(entry: PidFile) -> str:
    return entry.name.split("-")[0]


def _databases(asked: Mapping[_Key, _Asked]) -> dict[_Key, str | None]:
    """Each asked database as its settings in that environment name it; None if refused."""
    from farm_core.schema import database_in_use, database_settings_in

    found: dict[_Key, str | None] = {}
    for key, (service, environment, cwd) in asked.items():
        settings = database_settings_in(service, environment)
        folder = Path(cwd) if cwd is not None else None
        where = None if settings is None else database_in_use(service, settings, folder)
        found[key] = None if where is None else str(where["database"])
    return found
