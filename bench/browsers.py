"""Which Chromium a bench runs: the agents' task browser, and the binaries found running."""

import contextlib
import os
from pathlib import Path

from farm_agent.browser.chromium import task_browser_arguments, task_browser_executable
from farm_agent.settings import AgentSettings
from farm_cli.launcher.farm import LocalFarm


def task_browser() -> tuple[Path, list[str]]:
    """The executable and flags the agents' task browsers launch, from the agents' settings."""
    settings = AgentSettings()
    executable = task_browser_executable(settings.headless_shell_path, settings.chromium_path)
    return executable, task_browser_arguments(settings.page_heap_mb)


def browsers_under(pid: int) -> list[str]:
    """The executables of the Chromium browsers (not their helpers) among `pid`'s descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: set[str] = set()
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        pending += children.get(child, [])
        with contextlib.suppress(OSError):
            arguments = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"--headless" in b" ".join(arguments) and not any(
                argument.startswith(b"--type=") for argument in arguments
            ):
                found.add(str(Path(f"/proc/{child}/exe").readlink()))
    return sorted(found)


def agent_process_ids(farm: LocalFarm) -> list[int]:
    """The process ids of a farm's agents."""
    return [process.pid for name, process in farm.processes.items() if name.startswith("agent")]


def browsers_ran(agent_pids: list[int]) -> str:
    """Which Chromium binaries the farm's agents and this bench's Playwright are running."""
    farm = sorted({path for pid in agent_pids for path in browsers_under(pid)})
    playwright = browsers_under(os.getpid())
    return (
        f"farm agents ran {', '.join(farm) or 'unknown (external farm)'}; "
        f"Playwright ran {', '.join(playwright) or 'none'}"
    )
