"""How the farm starts Chromium: the flags its machines need, and finding a browser's process."""

import os
from pathlib import Path

from farm_agent.metrics import process_tree

# Flags the farm's machines need: no sandbox (containers), no GPU, no /dev/shm (small in
# containers), and nothing that phones home or prompts on first run.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

# Chromium binds a unix socket at $TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket and
# aborts at launch when that path is longer than a socket address holds (107 bytes).
MAX_BROWSER_TMPDIR_CHARS = 107 - len("/org.chromium.Chromium.XXXXXX/SingletonSocket")
# A switch Chromium ignores, so that the agent can find a browser's process to kill it.
MARKER_SWITCH = "--farm-browser"


def browser_processes(marker: str) -> list[int]:
    """The agent's own Chromium processes launched with `marker` (the browser, not its children)."""
    switch = f"{MARKER_SWITCH}={marker}".encode()
    found = []
    for pid in process_tree(os.getpid()):
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if switch in arguments and b"--type=" not in arguments:
            found.append(pid)
    return found
