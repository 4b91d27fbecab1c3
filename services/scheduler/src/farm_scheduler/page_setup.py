"""Checks a PageSetup (of a task, a session or a session command); errors name the JSON field.

The MAX_/MIN_ constants below are the setup's size limits; docs/api.md lists them
with the TaskSpec's (a test checks the two agree). A time zone must be a name the
IANA database knows (Python's zoneinfo, with the `tzdata` package where the system
has none); Chromium knows every one of them.
"""

import functools
import math
import re
import zoneinfo
from collections.abc import Mapping
from urllib.parse import urlsplit

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument

MAX_USER_AGENT_CHARS = 512
MAX_HEADERS = 32
MAX_HEADER_NAME_CHARS = 128
MAX_HEADER_VALUE_CHARS = 4096
MAX_LOCALE_CHARS = 35
MAX_TIMEZONE_CHARS = 64
MAX_COOKIES = 50
MAX_COOKIE_NAME_CHARS = 256
MAX_COOKIE_VALUE_CHARS = 4096
MAX_COOKIE_DOMAIN_CHARS = 253
MAX_COOKIE_PATH_CHARS = 1024
MAX_COOKIE_URL_CHARS = 2048
MAX_DEVICE_SCALE_FACTOR = 10
MIN_DEVICE_SCALE_FACTOR = 0.1

# RFC 9110 token: what a header name (and a cookie name) may be made of.
TOKEN_PATTERN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# A BCP 47 language tag of the usual shape: language, then script and region if any.
LOCALE_PATTERN = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?$")
DOMAIN_PATTERN = re.compile(r"^\.?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "expect",
        "host",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers that describe the connection or the proxy rather than the request: refused."""


def check_page_setup(setup: tasks_pb2.PageSetup, path: str = "setup") -> None:
    """Raises InvalidArgument naming the first bad field (`setup.cookies[2].name`)."""
    _check_text(f"{path}.userAgent", setup.user_agent, MAX_USER_AGENT_CHARS)
    _check_headers(f"{path}.extraHeaders", setup.extra_headers)
    _check_locale(f"{path}.locale", setup.locale)
    _check_timezone(f"{path}.timezone", setup.timezone)
    if len(setup.cookies) > MAX_COOKIES:
        raise InvalidArgument(
            f"{path}.cookies", f"must be at most {MAX_COOKIES} cookies, got {len(setup.cookies)}"
        )
    for index, cookie in enumerate(setup.cookies):
        _check_cookie(f"{path}.cookies[{index}]", cookie)
    for index, kind in enumerate(setup.block_resources):
        if (
            kind == tasks_pb2.RESOURCE_TYPE_UNSPECIFIED
            or kind not in tasks_pb2.ResourceType.values()
        ):
            raise InvalidArgument(f"{path}.blockResources[{index}]", f"has no value {kind}")
    _check_scale(f"{path}.deviceScaleFactor", setup.device_scale_factor)


def _check_text(field: str, value: str, most: int) -> None:
    """At most `most` characters, none of them a control character (it goes into a header)."""
    if len(value) > most:
        raise InvalidArgument(field, f"must be at most {most} characters, got {len(value)}")
    if any((ord(char) < 32 and char != "\t") or ord(char) == 127 for char in value):
        raise InvalidArgument(field, "must not contain control characters")


def _check_headers(path: str, headers: Mapping[str, str]) -> None:
    if len(headers) > MAX_HEADERS:
        raise InvalidArgument(path, f"must be at most {MAX_HEADERS} headers, got {len(headers)}")
    seen: set[str] = set()
    for name, value in sorted(headers.items()):
        field = f"{path}.{name}"
        if len(name) > MAX_HEADER_NAME_CHARS:
            raise InvalidArgument(
                path,
                f"a header name must be at most {MAX_HEADER_NAME_CHARS} characters, "
                f"got {len(name)}",
            )
        if not TOKEN_PATTERN.fullmatch(name):
            raise InvalidArgument(field, f"{name!r} is not a header name")
        lowered = name.lower()
        if lowered in FORBIDDEN_HEADERS or lowered.startswith("proxy-"):
            raise InvalidArgument(field, f"the header {name!r} cannot be set")
        if lowered in seen:
            raise InvalidArgument(field, "is given twice (header names ignore case)")
        seen.add(lowered)
        _check_text(field, value, MAX_HEADER_VALUE_CHARS)


def _check_locale(field: str, locale: str) -> None:
    if not locale:
        return
    if len(locale) > MAX_LOCALE_CHARS:
        raise InvalidArgument(
            field, f"must be at most {MAX_LOCALE_CHARS} characters, got {len(locale)}"
        )
    if not LOCALE_PATTERN.fullmatch(locale):
        raise InvalidArgument(
            field, f"must be a language tag such as 'de', 'de-DE' or 'zh-Hant-TW', got {locale!r}"
        )


def _check_timezone(field: str, timezone: str) -> None:
    if not timezone:
        return
    if len(timezone) > MAX_TIMEZONE_CHARS:
        raise InvalidArgument(
            field, f"must be at most {MAX_TIMEZONE_CHARS} characters, got {len(timezone)}"
        )
    if timezone not in _known_timezones():
        raise InvalidArgument(
            field, f"must be an IANA time zone such as 'Europe/Berlin', got {timezone!r}"
        )


@functools.cache
def _known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_scale(field: str, scale: float) -> None:
    if scale == 0:
        return
    if not math.isfinite(scale) or not MIN_DEVICE_SCALE_FACTOR <= scale <= MAX_DEVICE_SCALE_FACTOR:
        raise InvalidArgument(
            field,
            f"must be 0 or between {MIN_DEVICE_SCALE_FACTOR} and {MAX_DEVICE_SCALE_FACTOR}, "
            f"got {scale}",
        )


def _check_cookie(path: str, cookie: tasks_pb2.Cookie) -> None:
    """Checks one cookie as Chromium would take it; fills in path "/" for a domain cookie."""
    if not cookie.name:
        raise InvalidArgument(f"{path}.name", "is required")
    if len(cookie.name) > MAX_COOKIE_NAME_CHARS:
        raise InvalidArgument(
            f"{path}.name",
            f"must be at most {MAX_COOKIE_NAME_CHARS} characters, got {len(cookie.name)}",
        )
    if not TOKEN_PATTERN.fullmatch(cookie.name):
        raise InvalidArgument(f"{path}.name", f"{cookie.name!r} is not a cookie name")
    _check_text(f"{path}.value", cookie.value, MAX_COOKIE_VALUE_CHARS)
    if ";" in cookie.value:
        raise InvalidArgument(f"{path}.value", "must not contain ';'")
    _check_cookie_place(path, cookie)
    if cookie.expires < 0:
        raise InvalidArgument(
            f"{path}.expires",
            f"must be 0 (a session cookie) or seconds since the epoch, got {cookie.expires}",
        )
    if cookie.same_site not in tasks_pb2.SameSite.values():
        raise InvalidArgument(f"{path}.sameSite", f"has no value {cookie.same_site}")
    if cookie.same_site == tasks_pb2.SAME_SITE_NONE and not cookie.secure:
        raise InvalidArgument(f"{path}.sameSite", "SAME_SITE_NONE needs secure")
    _check_cookie_prefix(path, cookie)


def _check_cookie_place(path: str, cookie: tasks_pb2.Cookie) -> None:
    """Exactly one of url, or domain (with path): where the cookie belongs."""
    if cookie.url:
        if cookie.domain or cookie.path:
            raise InvalidArgument(
                f"{path}.url", "is given instead of domain and path, not with them"
            )
        if len(cookie.url) > MAX_COOKIE_URL_CHARS:
            raise InvalidArgument(
                f"{path}.url",
                f"must be at most {MAX_COOKIE_URL_CHARS} characters, got {len(cookie.url)}",
            )
        try:
            parts = urlsplit(cookie.url)
        except ValueError as error:
            raise InvalidArgument(f"{path}.url", f"is not a valid URL: {error}") from error
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument(f"{path}.url", "must be an http or https URL with a host")
        return
    if not cookie.domain:
        raise InvalidArgument(f"{path}.domain", "is required (or give url)")
    if len(cookie.domain) > MAX_COOKIE_DOMAIN_CHARS:
        raise InvalidArgument(
            f"{path}.domain",
            f"must be at most {MAX_COOKIE_DOMAIN_CHARS} characters, got {len(cookie.domain)}",
        )
    if not DOMAIN_PATTERN.fullmatch(cookie.domain):
        raise InvalidArgument(f"{path}.domain", f"{cookie.domain!r} is not a domain")
    if not cookie.path:
        cookie.path = "/"
    if not cookie.path.startswith("/"):
        raise InvalidArgument(f"{path}.path", f"must start with '/', got {cookie.path!r}")
    _check_text(f"{path}.path", cookie.path, MAX_COOKIE_PATH_CHARS)


def _check_cookie_prefix(path: str, cookie: tasks_pb2.Cookie) -> None:
    """The rules of the __Secure- and __Host- name prefixes, which Chromium enforces."""
    if cookie.name.startswith(("__Secure-", "__Host-")) and not cookie.secure:
        raise InvalidArgument(f"{path}.secure", f"a cookie named {cookie.name!r} needs secure")
    if cookie.name.startswith("__Host-") and (cookie.domain or cookie.path not in ("", "/")):
        raise InvalidArgument(
            f"{path}.name", f"a cookie named {cookie.name!r} must be given by url, without domain"
        )
