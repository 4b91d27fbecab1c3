"""What tenants keep across tasks — visual baselines and browser profiles — and how they are named.

The scheduler checks the names in specs, the agents build baseline keys, and the
storage service checks both again: all with these rules.
"""

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from farm.storage.v1 import ingest_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_BASELINE_URL_CHARS = 2048
DEFAULT_COMPARE_THRESHOLD = 0.001
"""The share of pixels that may differ when `compare.threshold` is 0."""


def check_saved_name(field: str, name: str) -> str:
    """`name` if it is a valid profile or baseline name; InvalidArgument naming `field` if not."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidArgument(
            field,
            "must be 1 to 64 characters of letters, digits, '.', '_' and '-', starting with a "
            f"letter or digit, got {name!r}",
        )
    return name


def baseline_url(url: str) -> str:
    """The part of a page's URL a baseline is kept under: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))


@dataclass(frozen=True)
class BaselineKey:
    """What names one baseline of a tenant: a name, a page URL without its query, a viewport."""

    name: str
    url: str
    viewport_width: int
    viewport_height: int

    @classmethod
    def of(cls, key: ingest_pb2.BaselineKey) -> "BaselineKey":
        """The key a storage request carries."""
        return cls(key.name, key.url, key.viewport.width, key.viewport.height)

    def message(self) -> ingest_pb2.BaselineKey:
        """The key as storage's requests carry it."""
        return ingest_pb2.BaselineKey(
            name=self.name,
            url=self.url,
            viewport=tasks_pb2.Viewport(width=self.viewport_width, height=self.viewport_height),
        )

    def sha256(self) -> str:
        """One digest of the whole key, unique per key (storage's unique index)."""
        joined = "\n".join(
            (self.name, self.url, str(self.viewport_width), str(self.viewport_height))
        )
        return hashlib.sha256(joined.encode()).hexdigest()

    def describe(self) -> str:
        """The key as a message shows it."""
        return f"{self.name!r} of {self.url} at {self.viewport_width}x{self.viewport_height}"
