"""How a process's NATS servers are named in messages: every server, no credentials."""

from farm_core.nats_access import NatsAccess


def test_the_servers_are_shown_without_user_or_password() -> None:
    access = NatsAccess(
        "nats://scheduler:s3cret@10.0.0.5:4222, tls://ops@nats-2:4222,127.0.0.1:4223"
    )
    assert access.shown() == "nats://10.0.0.5:4222,tls://nats-2:4222,127.0.0.1:4223"
