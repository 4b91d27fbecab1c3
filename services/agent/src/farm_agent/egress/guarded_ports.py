"""Loopback ports no page may reach: the DevTools ports of the sessions' browsers.

A session's Chromium listens for CDP on a loopback port, without any check of who
connects. The agent that launched it refuses that port to its pages. Agents that
share a host (a local farm of several agents) share its loopback too, so each also
refuses the ports the others guard: with a shared folder (FARM_AGENT_GUARDED_PORTS_DIR,
which `farm up` gives all its agents), every guarded port is a file named by its
number there, written before the browser listens and removed once it has ended.
"""

import contextlib
from pathlib import Path


class GuardedPorts:
    """The guarded loopback ports: this agent's own, and those in the shared folder."""

    def __init__(self, shared_folder: Path | None = None, owner: str = "") -> None:
        self._own: set[int] = set()
        self._shared = shared_folder
        self._owner = owner
        if shared_folder is not None:
            shared_folder.mkdir(parents=True, exist_ok=True)
            self._forget_earlier_runs()

    def __contains__(self, port: object) -> bool:
        if port in self._own:
            return True
        # One stat, only for a request to a loopback address with a port.
        return self._shared is not None and (self._shared / str(port)).exists()

    @property
    def own(self) -> frozenset[int]:
        """The ports this agent guards."""
        return frozenset(self._own)

    def guard(self, port: int) -> None:
        """Refuses `port` to pages, this agent's and (with the shared folder) every other's."""
        self._own.add(port)
        if self._shared is not None:
            (self._shared / str(port)).write_text(self._owner)

    def release(self, port: int) -> None:
        """Stops guarding `port` (its listener has closed)."""
        self._own.discard(port)
        if self._shared is not None:
            with contextlib.suppress(OSError):
                (self._shared / str(port)).unlink(missing_ok=True)

    def _forget_earlier_runs(self) -> None:
        """Removes the files an earlier run of this agent left (it was killed).

        Their browsers died with it; a port another program listens on now is not the farm's.
        """
        if not self._owner or self._shared is None:
            return
        for path in self._shared.iterdir():
            with contextlib.suppress(OSError):
                if path.read_text() == self._owner:
                    path.unlink()
