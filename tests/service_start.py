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


def service_environment(home: Path, settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without the farm's settings, then FARM_HOME and `settings`."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(_SETTING_PREFIXES)
    }
    # Unless a test gives one, a NATS no server listens on: never a farm's on this machine.
    quiet = {"FARM_HOME": str(home), "FARM_LOG_FORMAT": "text", "NATS_URL": "nats://127.0.0.1:9"}
    return environment | quiet | settings


def start_service(service: str, home: Path, settings: dict[str, str]) -> Refusal:
    """Runs `python -m farm_<service>` with only `settings` (and FARM_HOME) set; it must end."""
    finished = subprocess.run(
        [sys.executable, "-m", f"farm_{service}"],
        env=service_environment(home, settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Refusal(finished.returncode, finished.stderr)


class RunningService:
    """A service's process started in the background, its stderr read line by line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process

    def read_stderr_until(self, text: str, max_lines: int = 300) -> str:
        """stderr up to the first line holding `text`; AssertionError if it ends without one."""
        assert self._process.stderr is not None
        seen: list[str] = []
        for _ in range(max_lines):
            line = self._process.stderr.readline()
            if not line:
                break
            seen.append(line)
            if text in line:
                return "".join(seen)
        raise AssertionError(f"the service never said {text!r}:\n{''.join(seen)}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not ended within 30 s; its stderr closed."""
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stderr is not None:
            self._process.stderr.close()


def start_service_in_background(
    service: str, home: Path, settings: dict[str, str]
) -> RunningService:
    """Starts `python -m farm_<service>` as `start_service` does, without waiting for its end."""
    return RunningService(
        subprocess.Popen(
            [sys.executable, "-m", f"farm_{service}"],
            env=service_environment(home, settings),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    )
