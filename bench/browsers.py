"""Which Chromium a bench runs: the agents' task browser, and the binaries found running."""

import contextlib
import os
from pathlib import Path

from farm_agent.browser.chromium import (
    MARKER_SWITCH,
    task_browser_arguments,
    task_browser_executable,
)
from farm_agent.settings import AgentSettings
from farm_cli.launcher.farm import LocalFarm

TASK_BROWSER = f"{MARKER_SWITCH}=".encode()
"""The switch that marks an agent's task browsers (session browsers have none)."""


def task_browser() -> tuple[Path, list[str]]:
    """The executable and flags the agents' task browsers launch, from the agents' settings."""
    settings = AgentSettings()
    executable = task_browser_executable(settings.headless_shell_path, settings.chromium_path)
    return executable, task_browser_arguments(settings.page_heap_mb)


def browsers_under(pid: int, switch: bytes, skip: frozenset[int] = frozenset()) -> list[str]:
    """The executables of the Chromium browsers (not their helpers) with `switch` among
    `pid`'s descendants, not looking under the processes in `skip`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: set[str] = set()
    pending = [child for child in children.get(pid, []) if child not in skip]
    while pending:
        child = pending.pop()
        pending += [grandchild for grandchild in children.get(child, []) if grandchild not in skip]
        with contextlib.suppress(OSError):
            arguments = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if any(argument.startswith(switch) for argument in arguments) and not any(
                argument.startswith(b"--type=") for argument in arguments
            ):
                found.add(str(Path(f"/proc/{child}/exe").readlink()))
    return sorted(found)


def agent_process_ids(farm: LocalFarm) -> list[int]:
    """The process ids of a farm's agents."""
    return [process.pid for name, process in farm.processes.items() if name.startswith("agent")]


def browsers_ran(agent_pids: list[int]) -> str:
    """Which Chromium binaries the agents' task browsers and this bench's Playwright run."""
    farm = sorted({path for pid in agent_pids for path in browsers_under(pid, TASK_BROWSER)})
    # The bench's own farm runs under the bench too: its agents' browsers are not Playwright's.
    playwright = browsers_under(os.getpid(), b"--headless", frozenset(agent_pids))
    return (
        f"farm agents ran {', '.join(farm) or 'unknown (external farm)'}; "
        f"Playwright ran {', '.join(playwright) or 'none'}"
    )
