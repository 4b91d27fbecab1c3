"""The rules of a TaskSpec's text fields that both the scheduler and the CLI check.

The scheduler refuses a spec that breaks them (INVALID_ARGUMENT); `farm task` refuses
the same values as usage errors before anything is sent. Each error names the field
as sent in JSON; docs/api.md lists the limits.
"""

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from farm_core.errors import InvalidArgument

MAX_URL_CHARS = 2048
MAX_SELECTOR_CHARS = 1000
MAX_LABELS = 32
MAX_LABEL_KEY_CHARS = 63
MAX_LABEL_VALUE_CHARS = 256
MAX_REGION_CHARS = 32

REGION_PATTERN = re.compile(rf"^[a-z0-9][a-z0-9-]{{0,{MAX_REGION_CHARS - 1}}}$")
LABEL_KEY_PATTERN = re.compile(rf"^[a-z0-9][a-z0-9_.-]{{0,{MAX_LABEL_KEY_CHARS - 1}}}$")

# A host whose last label is a number (decimal, or hex after 0x) is an IPv4 address to a
# browser (the WHATWG URL standard), read the inet_aton way: 127.1, 0177.0.0.1, 2130706433.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9a-fA-F]*")

# What str.isspace() finds (the same Unicode class) and the other control characters.
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f]")


def check_length(field: str, value: str, most: int) -> None:
    """Raises InvalidArgument(field) when `value` is longer than `most` characters."""
    if len(value) > most:
        raise InvalidArgument(field, f"must be at most {most} characters, got {len(value)}")


def check_selector(field: str, value: str, *, required: bool = False) -> None:
    """Raises InvalidArgument(field) for a selector that is too long, blank, or (if required) empty.

    A selector of only spaces matches nothing: Playwright fails it on the agent, after
    the task has queued and a browser has loaded the page.
    """
    if required and not value:
        raise InvalidArgument(field, "is required")
    check_length(field, value, MAX_SELECTOR_CHARS)
    if value and not value.strip():
        raise InvalidArgument(field, "must not be blank")


def _shortened(text: str, most: int = 80) -> str:
    """`text`, cut to `most` characters with an ellipsis, for an error message."""
    return text if len(text) <= most else text[: most - 1] + "…"


def check_url(url: str, field: str = "url") -> None:
    """Raises InvalidArgument(field) unless `url` is an http or https URL with a host."""
    if not url:
        raise InvalidArgument(field, "is required")
    check_length(field, url, MAX_URL_CHARS)
    if _SPACE_OR_CONTROL.search(url):
        raise InvalidArgument(field, "must not contain spaces or control characters")
    if "://" not in url:
        # "example.com" or "localhost:8080/x": urlsplit finds no scheme, or takes the
        # host for one, so name what was sent rather than a scheme it does not have.
        raise InvalidArgument(
            field, f"must start with http:// or https://, got {_shortened(url)!r}"
        )
    try:
        parts = urlsplit(url)
        # .port raises ValueError for a port that is not a number from 0 to 65535.
        _ = parts.port
    except ValueError as error:
        raise InvalidArgument(field, f"is not a valid URL: {error}") from error
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument(field, f"must be http or https, got {parts.scheme!r}")
    if not parts.hostname:
        raise InvalidArgument(field, "has no host")
    check_host_labels(parts.hostname, field)
    check_numeric_host(parts.hostname, field)


def check_numeric_host(host: str, field: str = "url") -> None:
    """Raises InvalidArgument(field) for a numeric host not written as a dotted quad.

    Browsers read `127.1` or `0177.0.0.1` as IPv4 addresses while aiohttp refuses
    them, and the address checks would take them for names: only the one spelling
    every reader agrees on is let through.
    """
    last = host.removesuffix(".").rpartition(".")[2]
    if ":" in host or not _NUMERIC_LABEL.fullmatch(last):
        return
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise InvalidArgument(
            field,
            f"host {_shortened(host)!r} ends in a number, which makes it an IPv4 address, "
            "but is not written as one: a numeric host must be four decimal numbers 0-255 "
            "without leading zeros (127.0.0.1) or a bracketed IPv6 literal ([::1])",
        ) from None


def check_host_labels(host: str, field: str = "url") -> None:
    """Raises InvalidArgument(field) when the name `host` has an empty label (`a..b`, `.a`).

    No resolver can find such a name, and NATS refuses it as part of a key. One
    trailing dot (a fully qualified name) is allowed; address literals pass.
    """
    if ":" in host:
        return
    if "" in host.removesuffix(".").split("."):
        raise InvalidArgument(field, f"host {_shortened(host)!r} has an empty label")


def check_region(region: str) -> None:
    """Raises InvalidArgument unless `region` is empty or a region name."""
    if region and not REGION_PATTERN.fullmatch(region):
        raise InvalidArgument(
            "region",
            f"must be empty or 1 to {MAX_REGION_CHARS} characters of a-z, 0-9 and '-', "
            f"starting with a letter or digit, got {region!r}",
        )


def check_label_key(field: str, key: str) -> None:
    """Raises InvalidArgument(field) unless `key` is a valid label key."""
    if not LABEL_KEY_PATTERN.fullmatch(key):
        raise InvalidArgument(
            field,
            f"label key {key!r} must be 1 to {MAX_LABEL_KEY_CHARS} characters of a-z, 0-9, "
            "'_', '.', '-', "
            "starting with a letter or digit",
        )


def check_label(field: str, key: str, value: str) -> None:
    """Raises InvalidArgument(field) unless `key` is a label key and `value` short enough."""
    check_label_key(field, key)
    if len(value) > MAX_LABEL_VALUE_CHARS:
        raise InvalidArgument(
            field,
            f"the value of {key!r} must be at most {MAX_LABEL_VALUE_CHARS} characters, "
            f"got {len(value)}",
        )


def check_label_count(field: str, count: int) -> None:
    """Raises InvalidArgument(field) for more than MAX_LABELS labels."""
    if count > MAX_LABELS:
        raise InvalidArgument(field, f"must be at most {MAX_LABELS} labels, got {count}")


def check_labels(labels: Mapping[str, str]) -> None:
    """Raises InvalidArgument unless the labels are within their count and sizes."""
    check_label_count("labels", len(labels))
    for key, value in labels.items():
        check_label("labels", key, value)
