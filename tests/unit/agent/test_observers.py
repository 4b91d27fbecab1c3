"""What a result collects, as pure logic: bounded logs and their readers, URLs without
secrets, HAR entries and their headers, cookies; the limits as docs/api.md lists them."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser import collect, observers
from farm_agent.browser.collect import cookie_message, network_request
from farm_agent.browser.har import REDACTED, har_entry, har_headers, har_log
from farm_agent.browser.observers import (
    MAX_CONSOLE_TEXT_CHARS,
    MAX_LOGGED_URL_CHARS,
    BoundedLog,
    RecordedRequest,
    console_message,
    public_url,
    source_of,
)

ROOT = Path(__file__).resolve().parents[3]


def test_each_reader_takes_what_came_since_it_last_took() -> None:
    log: BoundedLog[str] = BoundedLog(limit=10)
    log.add("a")
    log.add("b")
    assert log.take("console") == ["a", "b"]
    log.add("c")
    assert log.take("console") == ["c"]
    assert log.take("console") == []
    assert log.take("har") == ["a", "b", "c"]


def test_a_full_log_keeps_the_newest_records() -> None:
    log: BoundedLog[int] = BoundedLog(limit=3)
    for number in range(5):
        log.add(number)
    assert log.take("network") == [2, 3, 4]
    log.add(5)
    assert log.take("network") == [5]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://a.example/app.js?key=secret#part", "https://a.example/app.js"),
        ("http://user:pass@a.example:8080/x?y=1", "http://a.example:8080/x"),
        ("http://[::1]:81/v6?q", "http://[::1]:81/v6"),
        ("wss://a.example/socket?token=t", "wss://a.example/socket"),
        ("/relative/next?token=t", "/relative/next"),
        ("data:text/plain,hello?there", "data:text/plain,hello"),
        ("", ""),
    ],
)
def test_public_urls_have_no_query_fragment_or_credentials(url: str, shown: str) -> None:
    assert public_url(url) == shown


def test_public_urls_are_cut() -> None:
    assert len(public_url("https://a.example/" + "x" * 2000)) == MAX_LOGGED_URL_CHARS


def test_a_source_counts_lines_from_one_and_drops_the_query() -> None:
    assert source_of("https://a.example/app.js?v=2", 11) == "https://a.example/app.js:12"
    assert source_of("", 3) == ""


def test_a_long_console_text_is_cut_and_marked() -> None:
    message = console_message("log", "x" * (MAX_CONSOLE_TEXT_CHARS + 10), "")
    assert len(message.text) == MAX_CONSOLE_TEXT_CHARS
    assert message.text.endswith("…")
    assert message.time.seconds > 0


def test_secret_headers_are_redacted_and_urls_in_headers_lose_their_queries() -> None:
    headers = har_headers(
        {
            "Authorization": "Bearer abc",
            "cookie": "sid=abc",
            "set-cookie": "sid=abc; HttpOnly",
            "Proxy-Authorization": "Basic abc",
            "referer": "https://a.example/page?token=abc",
            "location": "/next?token=abc",
            "link": "<https://cdn.example/a.css?v=abc>; rel=preload",
            "content-type": "text/html",
        }
    )
    values = {header["name"]: header["value"] for header in headers}
    assert values["Authorization"] == values["cookie"] == REDACTED
    assert values["set-cookie"] == values["Proxy-Authorization"] == REDACTED
    assert values["referer"] == "https://a.example/page"
    assert values["location"] == "/next"
    assert values["link"] == "<https://cdn.example/a.css>; rel=preload"
    assert values["content-type"] == "text/html"
    assert "abc" not in str(headers)


@dataclass
class FakeRequest:
    """The part of Playwright's Request that the log and the HAR read."""

    url: str
    method: str = "GET"
    resource_type: str = "script"
    headers: dict[str, str] = field(default_factory=lambda: {"accept": "*/*"})
    post_data_buffer: bytes | None = None


@dataclass
class FakeResponse:
    headers: dict[str, str]
    status_text: str = "OK"


def recorded(url: str, **fields: Any) -> RecordedRequest:
    return RecordedRequest(
        FakeRequest(url),  # type: ignore[arg-type]  # stands in for Playwright's Request
        started=1_700_000_000.25,
        started_monotonic=0.0,
        **fields,
    )


def test_a_finished_request_in_the_network_log_and_the_har() -> None:
    entry = recorded(
        "https://a.example/app.js?key=secret",
        response=FakeResponse({"content-type": "text/javascript", "location": "/x?y"}),
        ended=True,
        status=200,
        duration_ms=40.0,
        timing={
            "domainLookupStart": 1.0,
            "domainLookupEnd": 3.0,
            "connectStart": 3.0,
            "secureConnectionStart": 5.0,
            "connectEnd": 9.0,
            "requestStart": 10.0,
            "responseStart": 30.0,
            "responseEnd": 40.0,
        },
        body_bytes=1234,
        headers_bytes=100,
    )

    logged = network_request(entry)
    assert (logged.url, logged.status, logged.size_bytes) == ("https://a.example/app.js", 200, 1234)
    assert (logged.method, logged.resource_type, logged.duration_ms) == ("GET", "script", 40.0)

    har = har_entry(entry)
    assert har["startedDateTime"] == "2023-11-14T22:13:20.250Z"
    assert har["request"]["url"] == "https://a.example/app.js"
    assert har["request"]["queryString"] == []
    timings = har["timings"]
    assert (timings["dns"], timings["connect"], timings["ssl"]) == (2.0, 6.0, 4.0)
    assert (timings["wait"], timings["receive"], timings["blocked"]) == (20.0, 10.0, 2.0)
    assert har["time"] == 40.0
    response = har["response"]
    assert (response["status"], response["bodySize"], response["headersSize"]) == (200, 1234, 100)
    assert response["content"] == {"size": 1234, "mimeType": "text/javascript"}
    assert response["redirectURL"] == "/x"
    assert "_failure" not in har


def test_a_refused_request_has_no_answer_and_says_why() -> None:
    entry = recorded(
        "http://169.254.169.254/latest",
        response=FakeResponse({"content-type": "text/plain"}, "Forbidden"),
        ended=True,
        failure="refused by the egress guard: 169.254.169.254 is a metadata address",
        duration_ms=3.0,
    )

    assert network_request(entry).failure.startswith("refused by the egress guard")
    har = har_entry(entry)
    assert har["_failure"] == entry.failure
    assert har["response"]["status"] == 0
    assert har["response"]["headers"] == []
    assert har["response"]["content"]["mimeType"] == "x-unknown"
    assert har["timings"]["blocked"] == 3.0
    assert har["time"] == 3.0


def test_a_request_in_flight_is_listed_as_it_stands() -> None:
    entry = recorded("https://a.example/poll")
    assert (network_request(entry).status, network_request(entry).size_bytes) == (0, 0)
    assert har_entry(entry)["response"]["bodySize"] == -1


def test_a_har_log_is_version_1_2_with_its_creator() -> None:
    log = har_log([recorded("https://a.example/")])["log"]
    assert log["version"] == "1.2"
    assert log["creator"]["name"] == "browserfarm"
    assert [entry["request"]["url"] for entry in log["entries"]] == ["https://a.example/"]


def test_cookies_as_the_result_carries_them() -> None:
    cookie = cookie_message(
        {
            "name": "sid",
            "value": "v",
            "domain": ".a.example",
            "path": "/",
            "expires": 1_800_000_000.5,
            "httpOnly": True,
            "secure": True,
            "sameSite": "Strict",
        }
    )
    assert (cookie.name, cookie.domain, cookie.expires) == ("sid", ".a.example", 1_800_000_000)
    assert (cookie.http_only, cookie.secure, cookie.same_site) == (
        True,
        True,
        tasks_pb2.SAME_SITE_STRICT,
    )
    session_cookie = cookie_message({"name": "s", "value": "", "expires": -1, "sameSite": "None"})
    assert (session_cookie.expires, session_cookie.same_site) == (0, tasks_pb2.SAME_SITE_NONE)


def test_docs_list_every_result_limit_with_its_value() -> None:
    text = (ROOT / "docs" / "api.md").read_text().split("\n## Result limits\n", 1)[1]
    text = text.split("\n## ", 1)[0]
    rows = re.findall(r"^\| .*?`(MAX_\w+)` \| ([\d ,]+) \|", text, flags=re.MULTILINE)
    documented = {name: int(value.replace(",", "").replace(" ", "")) for name, value in rows}
    constants = {
        name: value
        for module in (observers, collect)
        for name, value in vars(module).items()
        if re.fullmatch(r"MAX_[A-Z_]+", name) and isinstance(value, int)
    }
    assert documented == constants
