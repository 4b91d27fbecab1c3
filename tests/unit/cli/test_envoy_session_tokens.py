"""The edge's config for URLs that may carry a token: DevTools discovery, no traces, no logs."""

import re
from typing import Any

from farm_cli.launcher.envoy import Endpoint
from tests.unit.cli.envoy_render import connection_manager, rendered, routes

TOKENED = "[?&]token="


def session_route(config: dict[str, Any]) -> dict[str, Any]:
    (route,) = [r for r in routes(config) if "safe_regex" in r["match"]]
    return route


def test_devtools_discovery_goes_to_the_sessions_agent_as_its_cdp_socket() -> None:
    pattern = re.compile(session_route(rendered())["match"]["safe_regex"]["regex"])
    for path in ("/v1/sessions/s/json/version", "/v1/sessions/s/json/version/"):
        assert pattern.fullmatch(path), path
    for path in ("/v1/sessions/s/json/list", "/v1/sessions/s/json", "/v1/sessions/s/json/x"):
        assert not pattern.fullmatch(path), path


def test_the_routes_whose_urls_carry_tokens_are_never_traced() -> None:
    assert session_route(rendered(otlp=Endpoint("127.0.0.1", 14317)))["tracing"] == {
        "overall_sampling": {"numerator": 0}
    }


def test_envoy_traces_every_url_without_its_query() -> None:
    tracing = connection_manager(rendered(otlp=Endpoint("127.0.0.1", 14317)))["tracing"]
    (url,) = [tag["value"] for tag in tracing["custom_tags"] if tag["tag"] == "http.url"]
    assert "%PATH(NQ:ORIG_OR_PATH)%" in url
    assert ":PATH)%" not in url and "request.path)%" not in url


def test_a_request_with_a_token_in_its_query_is_logged_without_its_query() -> None:
    loggers = connection_manager(rendered())["access_log"]
    tokened = [
        logger
        for logger in loggers
        if f'&& request.path.matches("{TOKENED}")'
        in logger["filter"]["extension_filter"]["typed_config"]["expression"]
    ]
    others = [logger for logger in loggers if logger not in tokened]
    assert len(tokened) == len(others) == 2  # traced or not, each
    for logger in tokened:
        line = logger["typed_config"]["log_format"]["text_format_source"]["inline_string"]
        assert "%PATH(NQ:ORIG_OR_PATH)%?(query withheld)" in line
        assert "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%" not in line
    for logger in others:
        expression = logger["filter"]["extension_filter"]["typed_config"]["expression"]
        assert expression.endswith(f'&& !request.path.matches("{TOKENED}")')


def test_refusals_on_discovery_keep_envoys_text() -> None:
    mappers = connection_manager(rendered())["local_reply_config"]["mappers"]
    texts = [
        m["filter"]["header_filter"]["header"]["string_match"]["safe_regex"]["regex"]
        for m in mappers
        if "header_filter" in m["filter"]
        and m["body_format_override"].get("text_format_source") is not None
    ]
    assert any(re.fullmatch(text, "/v1/sessions/s/json/version/?token=x") for text in texts)
