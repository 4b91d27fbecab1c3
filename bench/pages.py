"""Memory as the distinct physical pages a set of processes maps (root only).

PSS divides a page shared with other processes among them, so an agent's PSS falls
as other farms on the machine load the same Python, node and Chromium pages. The
distinct physical pages its processes map (from /proc/PID/pagemap; a page mapped
by two of them counts once) are what the agent would take alone on a machine,
whatever else runs: the measure to compare A/B runs on a shared machine by.
"""

import os
import struct
from collections.abc import Iterable
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
PRESENT = 1 << 63
PFN_MASK = (1 << 55) - 1
# Pagemap is read this many entries at a time (8 bytes each).
CHUNK_PAGES = 1 << 16


def resident_ranges(pid: int) -> list[tuple[int, int]]:
    """The address ranges of `pid` with resident pages (from smaps; others are skipped)."""
    ranges: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    with Path(f"/proc/{pid}/smaps").open() as smaps:
        for line in smaps:
            head = line.split(maxsplit=1)[0]
            if "-" in head and not head.endswith(":"):
                start, end = head.split("-")
                current = (int(start, 16), int(end, 16))
            elif head == "Rss:" and current is not None and int(line.split()[1]) > 0:
                ranges.append(current)
    return ranges


def physical_pages(pid: int) -> set[int]:
    """The page frame numbers `pid` maps now; empty when it cannot be read (gone, not root)."""
    frames: set[int] = set()
    try:
        ranges = resident_ranges(pid)
        with Path(f"/proc/{pid}/pagemap").open("rb") as pagemap:
            for start, end in ranges:
                first, last = start // PAGE_BYTES, end // PAGE_BYTES
                for chunk in range(first, last, CHUNK_PAGES):
                    count = min(CHUNK_PAGES, last - chunk)
                    pagemap.seek(chunk * 8)
                    data = pagemap.read(count * 8)
                    for (entry,) in struct.iter_unpack("<Q", data):
                        if entry & PRESENT:
                            frames.add(entry & PFN_MASK)
    except (OSError, ValueError):
        return set()
    frames.discard(0)  # Not root: the kernel hides the frame numbers.
    return frames


def distinct_bytes(pids: Iterable[int]) -> int:
    """The memory of the distinct physical pages the processes `pids` map, in bytes."""
    frames: set[int] = set()
    for pid in pids:
        frames |= physical_pages(pid)
    return len(frames) * PAGE_BYTES
