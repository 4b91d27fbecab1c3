"""How the agent starts Playwright's driver (node): its environment, and its idle collection.

The driver's TMPDIR is the agent's scratch directory (it makes Chromium's profile
directories there). Its node runs with a small young generation, and loads
`driver_gc.cjs`, which gives back the heap its last tasks left once it has been idle
for `driver_idle_gc_seconds` (docs/performance.md "Agent memory").
"""

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from farm_agent.settings import AgentSettings

IDLE_COLLECTOR = Path(__file__).with_name("driver_gc.cjs")
# A small young generation keeps node about 16 MiB smaller when idle; --expose-gc lets
# the idle collector call a collection.
DRIVER_NODE_OPTIONS = ("--max-semi-space-size=1", "--expose-gc")
MMAP_THRESHOLD_BYTES = 128 * 1024


def driver_environment(settings: AgentSettings, scratch: Path) -> dict[str, str]:
    """The variables the driver starts with, on top of the agent's (NODE_OPTIONS extended)."""
    options = [os.environ.get("NODE_OPTIONS", ""), *DRIVER_NODE_OPTIONS]
    if settings.driver_idle_gc_seconds > 0:
        options.append(f'--require "{IDLE_COLLECTOR}"')
    return {
        "TMPDIR": str(scratch),
        "NODE_OPTIONS": " ".join(option for option in options if option),
        "FARM_DRIVER_IDLE_GC_MS": str(round(settings.driver_idle_gc_seconds * 1000)),
        # A fixed threshold (glibc raises its own up to 32 MiB as big blocks are freed)
        # keeps big buffers (screenshots) in mappings of their own, unmapped when freed,
        # instead of in malloc's heap, which keeps their pages after the collection.
        "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_BYTES),
    }


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """Sets `variables` in os.environ for the block (Playwright's driver inherits it)."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
