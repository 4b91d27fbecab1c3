"""Starting a service's process with given settings, as an operator would, to see it refuse them."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SERVICES = ("auth", "storage", "scheduler", "agent", "mcp", "console")
# Names from the environment that would reach a service and change what it reads.
_SETTING_PREFIXES = ("FARM_", "NATS_", "S3_", "DATABASE_URL", "OTEL_")


@dataclass(frozen=True)
class Refusal:
    """How a service's process ended: its exit status and what it wrote to stderr."""

    returncode: int
    stderr: str


def start_service(service: str, home: Path, settings: dict[str, str]) -> Refusal:
    """Runs `python -m farm_<service>` with only `settings` (and FARM_HOME) set; it must end."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(_SETTING_PREFIXES)
    }
    environment |= {"FARM_HOME": str(home), "FARM_LOG_FORMAT": "text", **settings}
    finished = subprocess.run(
        [sys.executable, "-m", f"farm_{service}"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Refusal(finished.returncode, finished.stderr)
