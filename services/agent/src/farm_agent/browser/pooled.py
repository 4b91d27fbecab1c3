"""One browser of the pool and what the pool knows about its use."""

import time
from dataclasses import dataclass, field

from playwright.async_api import Browser


@dataclass(eq=False)
class PooledBrowser:
    """One running browser: its process marker, tasks started on it and leases held now."""

    browser: Browser
    marker: str
    tasks_started: int = 0
    leases: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    retiring: bool = False

    @property
    def usable(self) -> bool:
        """Whether new tasks may start on it: not retiring and still connected."""
        return not self.retiring and self.browser.is_connected()
