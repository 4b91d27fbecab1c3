"""Tells whether Python ran in a forked child: Python's after-fork hooks write a mark.

A child started by fork-and-exec with no Python in between (CPython's subprocess on
Linux) leaves no mark; one started by uvloop's spawn runs the hooks first (uvloop
issue 749), which in a fork of a process with gRPC's threads crashed now and then.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_watched: list[Path] = []


def _mark_in_child() -> None:
    # Runs in a forked child only if its fork runs Python's after-fork hooks.
    for path in _watched:
        with path.open("a") as marks:
            marks.write("python ran in the fork\n")


os.register_at_fork(after_in_child=_mark_in_child)


@contextmanager
def fork_marks(path: Path) -> Iterator[Path]:
    """Within the block, each fork that runs Python appends a line to `path`."""
    _watched.append(path)
    try:
        yield path
    finally:
        _watched.remove(path)
