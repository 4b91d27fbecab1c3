"""How a process's NATS servers are named in messages: every server, no credentials."""

import pytest

from farm_core.nats_access import NatsAccess, checked_server_urls


def test_the_servers_are_shown_without_user_or_password() -> None:
    access = NatsAccess(
        "nats://scheduler:s3cret@10.0.0.5:4222, tls://ops@nats-2:4222,127.0.0.1:4223"
    )
    assert access.shown() == "nats://10.0.0.5:4222,tls://nats-2:4222,127.0.0.1:4223"


@pytest.mark.parametrize(
    "url",
    [
        "nats://127.0.0.1:4222",
        "nats://nats-1:4222,nats://nats-2:4222, nats://nats-3:4222",
        "tls://scheduler:s3cret@10.0.0.5:4222",
        "127.0.0.1:4222",
        "nats-host",
        "tls://[::1]:4222/",
        "wss://nats.example:443",
    ],
)
def test_nats_server_urls_are_taken(url: str) -> None:
    assert checked_server_urls(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("htp:/nats-host", "is not a server URL"),
        ("http://nats-host:4222", "unknown scheme 'http'"),
        ("nats://nats-host:70000", "bad port"),
        ("nats://nats-host:0", "is not a server URL"),
        ("nats://:4222", "is not a server URL"),
        ("nats://a:4222,ws://b:80", "cannot be mixed"),
        (" , ", "no NATS server given"),
    ],
)
def test_malformed_nats_server_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        checked_server_urls(url)
