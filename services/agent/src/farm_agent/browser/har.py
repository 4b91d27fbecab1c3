"""The page's requests as a HAR 1.2 file (HTTP Archive), built from the recorded requests.

Built from the same request events as the network log, for tasks and sessions
alike (Playwright's own HAR recording exists only for a context it creates). A HAR
is often passed around, so it carries no secrets the page sent or got: no query
strings or fragments (nor in header values that are URLs), no credentials in URLs,
no cookies, no request bodies, and the values of the headers in SECRET_HEADERS
replaced by "(redacted)".
"""

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from importlib.metadata import version
from typing import Any

from farm_agent.browser.observers import RecordedRequest, public_url

HAR_CONTENT_TYPE = "application/json"
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "set-cookie"})
"""Headers whose values never go into a HAR."""
REDACTED = "(redacted)"
# Playwright's own HAR recorder says this when Chromium does not tell the protocol.
HTTP_VERSION = "HTTP/1.1"
# Headers whose whole value is a URL, maybe a relative one.
_URL_HEADERS = frozenset({"content-location", "location", "referer"})
# An absolute URL inside another header's value (Link, CSP report-uri...): its query goes.
_QUERY_IN_VALUE = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s?#\"'<>,;]*)[?#][^\s\"'<>,;]*", re.I)


def har_json(requests: Sequence[RecordedRequest]) -> bytes:
    """The HAR file of `requests`, as UTF-8 JSON."""
    return json.dumps(har_log(requests), ensure_ascii=False).encode()


def har_log(requests: Iterable[RecordedRequest]) -> dict[str, Any]:
    """The HAR document of `requests`, oldest first."""
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "browserfarm", "version": version("farm-agent")},
            "entries": [har_entry(recorded) for recorded in requests],
        }
    }


def har_entry(recorded: RecordedRequest) -> dict[str, Any]:
    """One request and its answer as a HAR entry; a failed one says why in `_failure`."""
    request = recorded.request
    timings = _timings(recorded)
    entry: dict[str, Any] = {
        "startedDateTime": dt.datetime.fromtimestamp(recorded.started, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "time": sum(max(timings[phase], 0.0) for phase in _PHASES),
        "request": {
            "method": request.method,
            "url": recorded.url,
            "httpVersion": HTTP_VERSION,
            "cookies": [],
            "headers": har_headers(request.headers),
            "queryString": [],
            "headersSize": -1,
            "bodySize": len(request.post_data_buffer or b""),
        },
        "response": _response(recorded),
        "cache": {},
        "timings": timings,
        "_resourceType": request.resource_type,
    }
    if recorded.failure:
        entry["_failure"] = recorded.failure
    return entry


def har_headers(headers: Mapping[str, str]) -> list[dict[str, str]]:
    """Headers as HAR name/value pairs, with secrets and URL queries taken out."""
    return [{"name": name, "value": _header_value(name, value)} for name, value in headers.items()]


def _header_value(name: str, value: str) -> str:
    lowered = name.lower()
    if lowered in SECRET_HEADERS:
        return REDACTED
    if lowered in _URL_HEADERS:
        return public_url(value)
    return _QUERY_IN_VALUE.sub(r"\1", value)


def _response(recorded: RecordedRequest) -> dict[str, Any]:
    # A request without a server's answer (failed, refused, still in flight) has none here.
    response = recorded.response if recorded.status else None
    headers = response.headers if response is not None else {}
    return {
        "status": recorded.status,
        "statusText": response.status_text if response is not None else "",
        "httpVersion": HTTP_VERSION,
        "cookies": [],
        "headers": har_headers(headers),
        "content": {
            "size": max(recorded.body_bytes, 0),
            "mimeType": headers.get("content-type", "x-unknown"),
        },
        "redirectURL": public_url(headers.get("location", "")),
        "headersSize": recorded.headers_bytes,
        "bodySize": recorded.body_bytes,
    }


# The phases HAR adds up to an entry's time (ssl is part of connect).
_PHASES = ("blocked", "dns", "connect", "send", "wait", "receive")


def _timings(recorded: RecordedRequest) -> dict[str, float]:
    """HAR's phases from Playwright's ResourceTiming; the time before the request is `blocked`."""
    timing = recorded.timing

    def span(start: str, end: str) -> float:
        began, ended = timing.get(start, -1), timing.get(end, -1)
        return ended - began if 0 <= began <= ended else -1.0

    phases = {
        "dns": span("domainLookupStart", "domainLookupEnd"),
        "connect": span("connectStart", "connectEnd"),
        "ssl": span("secureConnectionStart", "connectEnd"),
        "send": 0.0,
        "wait": max(span("requestStart", "responseStart"), 0.0),
        "receive": max(span("responseStart", "responseEnd"), 0.0),
    }
    known = sum(max(phases[phase], 0.0) for phase in _PHASES if phase in phases)
    return {"blocked": max(recorded.duration_ms - known, 0.0), **phases}
