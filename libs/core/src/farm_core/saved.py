"""What tenants keep across tasks — visual baselines and browser profiles — and how they are named.

The scheduler checks the names in specs, the agents build baseline keys, and the
storage service checks both again: all with these rules.
"""

import re
from urllib.parse import urlsplit, urlunsplit

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
