"""The launcher's side of FARM_HOME/edge.json: where the farm of a FARM_HOME is reached.

The launcher writes it once the farm is up and removes it on a clean stop; the record,
its file name and how clients read it (trusted only while the launcher that wrote it
still holds FARM_HOME's lock) are the SDK's, browserfarm.local_farm, which the `farm`
CLI and `browserfarm.Client()` both find the local farm with.
"""

import os
from pathlib import Path

from browserfarm.local_farm import EdgeRecord, edge_path
from farm_cli.launcher.credentials import write_private


def write_edge_record(home: Path, url: str, ca_file: Path | None) -> None:
    """Records `url` (and `ca_file`) as this launcher's farm in `home`."""
    write_private(edge_path(home), EdgeRecord(url, ca_file, os.getpid()).to_json())


def remove_edge_record(home: Path) -> None:
    """Removes `home`'s edge record, if any."""
    edge_path(home).unlink(missing_ok=True)
