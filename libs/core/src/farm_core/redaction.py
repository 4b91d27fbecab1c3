"""URLs' secrets taken out of the text the farm exports: span text and log lines.

A task's URL (or a callback's) is its caller's, and its user-info, query or fragment
may hold a secret: a password, a token, a signed link's signature. A failure names
the URL (`net::ERR_… at https://…`, `the page answered HTTP 404 (https://…)`); the
task's own error keeps it whole for its caller, while what leaves for a trace backend
or a log collector keeps the scheme, host and path and says `REDACTED` for the rest,
as OpenTelemetry's conventions for `url.full` ask.
"""

import re

REDACTED = "REDACTED"

_URL = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://)"
    r"(?P<userinfo>[^\s/?#@'\"<>]*@)?"
    r"(?P<rest>[^\s?#'\"<>]*)"
    r"(?P<query>\?[^\s#'\"<>]*)?"
    r"(?P<fragment>#[^\s'\"<>]*)?"
)
# Punctuation a URL ends on in prose ("(https://h/p?a=b)."): kept, not redacted.
_CLOSING = ").,;:]"


def redact_urls(text: str) -> str:
    """`text` with every URL's user-info, query values and fragment replaced by REDACTED."""
    if "://" not in text:
        return text
    return _URL.sub(_redacted, text)


def _redacted(url: re.Match[str]) -> str:
    userinfo, query, fragment = url["userinfo"], url["query"] or "", url["fragment"] or ""
    if not (userinfo or query or fragment):
        return url[0]
    last = fragment or query
    closing = last[len(last.rstrip(_CLOSING)) :]
    if fragment:
        fragment = fragment[: len(fragment) - len(closing)]
    else:
        query = query[: len(query) - len(closing)]
    if userinfo:
        userinfo = f"{REDACTED}:{REDACTED}@" if ":" in userinfo else f"{REDACTED}@"
    return (
        f"{url['head']}{userinfo or ''}{url['rest']}"
        f"{_redacted_query(query)}{'#' + REDACTED if len(fragment) > 1 else fragment}{closing}"
    )


def _redacted_query(query: str) -> str:
    """`?name=REDACTED&…`: the parameters' names stay, a part without `=` is redacted whole."""
    if len(query) <= 1:
        return query
    parts = [
        (f"{part.split('=', 1)[0]}={REDACTED}" if "=" in part else REDACTED) if part else ""
        for part in query[1:].split("&")
    ]
    return "?" + "&".join(parts)
