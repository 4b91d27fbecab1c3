"""FARM_HOME/edge.json: where the farm of a FARM_HOME is reached, for the `farm` CLI.

The launcher writes it once the farm is up and removes it on a clean stop; the CLI
trusts it only while the launcher that wrote it still holds FARM_HOME's lock, so a
file left by a killed launcher names no farm.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from farm_cli.launcher.credentials import write_private
from farm_cli.launcher.lock import lock_holder

EDGE_FILE = "edge.json"


@dataclass(frozen=True)
class EdgeRecord:
    """The edge URL of a FARM_HOME's farm, the CA its clients trust, and who wrote it."""

    url: str
    # The local CA of a `--tls` farm; None without TLS or with a certificate of one's own.
    ca_file: Path | None
    launcher_pid: int

    @property
    def tls(self) -> bool:
        """Whether the farm serves TLS only."""
        return self.url.startswith("https://")


def edge_path(home: Path) -> Path:
    """FARM_HOME/edge.json."""
    return home / EDGE_FILE


def write_edge_record(home: Path, url: str, ca_file: Path | None) -> None:
    """Records `url` (and `ca_file`) as this launcher's farm in `home`."""
    record = {
        "url": url,
        "tls": url.startswith("https://"),
        "ca_file": str(ca_file) if ca_file is not None else None,
        "launcher_pid": os.getpid(),
    }
    write_private(edge_path(home), json.dumps(record, indent=2) + "\n")


def remove_edge_record(home: Path) -> None:
    """Removes `home`'s edge record, if any."""
    edge_path(home).unlink(missing_ok=True)


def read_edge_record(home: Path) -> EdgeRecord | None:
    """`home`'s edge record as written, running or not; None if there is none (or unreadable)."""
    try:
        stored = json.loads(edge_path(home).read_text())
        return EdgeRecord(
            url=str(stored["url"]),
            ca_file=Path(stored["ca_file"]) if stored.get("ca_file") else None,
            launcher_pid=int(stored["launcher_pid"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_running(record: EdgeRecord, home: Path) -> bool:
    """Whether the launcher that wrote `record` still runs `home`'s farm (holds its lock)."""
    return lock_holder(home / "run") == record.launcher_pid
